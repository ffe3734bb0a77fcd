"""`run --local` / `stop` for real: a `python -m service` process on the embedded database.

One backend serves the module: `session check` passes against it, a generated project's own
tests (scripted model, real HTTP session storage) pass against it, and `stop` ends it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from strands_session_cli.project import read_env_file

from tests.cli.conftest import StubServer, running_stub

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]


def strands_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m strands_session_cli ARGS` as a user would, in `cwd`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BACKEND_")}
    environ.update(PYTHONPATH=str(REPO), COLUMNS="200", **env)
    return subprocess.run(
        [sys.executable, "-m", "strands_session_cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    # A zombie (state Z) has exited; only its parent has not reaped it yet.
    return not (state.exists() and state.read_text().rsplit(")", 1)[1].split()[0] == "Z")


@dataclass
class Backend:
    root: Path
    url: str
    unrelated: StubServer  # a server on the port .env named before `run --port` moved it

    @property
    def state_dir(self) -> Path:
        return self.root / ".session-backend"

    def pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.state_dir / "server.pid").read_text())
        return None

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid_file = self.state_dir / "postgres" / "postmaster.pid"
            return int(pid_file.read_text().splitlines()[0])
        return None


@pytest.fixture(scope="module")
def unrelated() -> Iterator[StubServer]:
    with running_stub() as stub:
        yield stub


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory, unrelated: StubServer) -> Iterator[Backend]:
    """A postgresql project made for the URL of an unrelated server, whose backend
    `strands-cli run --local --port` then started elsewhere."""
    base = tmp_path_factory.mktemp("local")
    created = strands_cli(
        "init",
        "live-agent",
        "--session-state=postgresql",
        "--session-url",
        unrelated.url,
        "--output-dir",
        str(base),
        cwd=base,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    root = base / "live-agent"
    port = _port()
    started = strands_cli("run", "--local", "--port", str(port), cwd=root)
    running = Backend(root, f"http://127.0.0.1:{port}", unrelated)
    try:
        log = running.state_dir / "server.log"
        detail = started.stdout + started.stderr + (log.read_text() if log.exists() else "")
        assert started.returncode == 0, detail
        assert f"ready at {running.url}" in started.stdout
        assert f"{running.url}/docs" in started.stdout
        yield running
    finally:
        strands_cli("stop", "--local", cwd=root)
        # Last resort, so a failed test never leaves processes behind.
        for pid, sig in (
            (running.pid(), signal.SIGKILL),
            (running.postmaster_pid(), signal.SIGINT),
        ):
            if pid is not None and _alive(pid):
                os.kill(pid, sig)


def test_run_local_keeps_its_state_in_the_project(backend: Backend) -> None:
    pid = backend.pid()
    assert pid is not None and _alive(pid)
    assert (backend.state_dir / "postgres" / "PG_VERSION").exists()
    assert (backend.state_dir / "server.log").stat().st_size > 0

    again = strands_cli("run", "--local", cwd=backend.root)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert backend.pid() == pid


def test_check_and_the_agent_use_the_url_run_moved_the_project_to(backend: Backend) -> None:
    env = read_env_file(backend.root / ".env")
    assert env["SESSION_BACKEND_URL"] == backend.url
    assert env["SESSION_BACKEND_PORT"] == backend.url.rsplit(":", 1)[1]
    backend.unrelated.requests.clear()

    result = strands_cli("session", "check", cwd=backend.root)  # no --url: the project's

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{backend.url} is ready" in result.stdout
    assert backend.unrelated.requests == []


def test_agent_without_model_credentials_says_so_in_one_line_and_kept_the_message(
    backend: Backend,
) -> None:
    environ = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(backend.root),
        # No credentials anywhere, and no instance metadata lookup either.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": "us-east-1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "live_agent", "--session-id", "no-creds", "Hello there"],
        cwd=backend.root,  # the agent reads SESSION_BACKEND_URL from .env, as run left it
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "AWS credentials" in lines[0] and "stored in session 'no-creds'" in lines[0]
    stored = httpx.get(
        f"{backend.url}/api/v1/sessions/no-creds/agents/live_agent/messages", timeout=10
    ).json()["items"]
    assert [m["message"]["content"][0]["text"] for m in stored] == ["Hello there"]


def test_generated_project_tests_pass_against_the_backend(backend: Backend) -> None:
    environ = {"PATH": str(Path(sys.executable).parent), "HOME": str(backend.root)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=backend.root,
        env=environ | {"SESSION_BACKEND_URL": backend.url},
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout and "skipped" not in result.stdout, result.stdout


def test_stop_ends_the_backend_and_its_database(backend: Backend) -> None:
    pid, postmaster = backend.pid(), backend.postmaster_pid()
    assert pid is not None and postmaster is not None

    stopped = strands_cli("stop", cwd=backend.root)

    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "Stopped" in stopped.stdout
    assert not _alive(pid) and not _alive(postmaster)
    assert not (backend.state_dir / "server.pid").exists()
    check = strands_cli("session", "check", "--url", backend.url, cwd=backend.root)
    assert check.returncode == 1 and "connection refused" in check.stderr

    again = strands_cli("stop", "--local", cwd=backend.root)
    assert again.returncode == 0 and "No local session backend is running" in again.stdout
    # Without --local: no local process, and no Docker here either (PATH has no `docker`).
    bare = strands_cli("stop", cwd=backend.root, PATH=str(Path(sys.executable).parent))
    assert bare.returncode == 0, bare.stdout + bare.stderr
    assert "No session backend is running here" in bare.stdout


def test_run_local_reports_a_backend_that_exits(tmp_path: Path) -> None:
    created = strands_cli(
        "init",
        "broken-agent",
        "--session-state=postgresql",
        "--output-dir",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    root = tmp_path / "broken-agent"

    result = strands_cli("run", "--local", "--port", str(_port()), cwd=root, LOG_LEVEL="loud")

    assert result.returncode == 1
    assert "the local backend exited" in result.stderr
    assert "LOG_LEVEL" in result.stderr
    assert not (root / ".session-backend" / "server.pid").exists()
