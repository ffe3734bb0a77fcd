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

import pytest

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]


def strands_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m service.cli ARGS` as a user would, in `cwd`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BACKEND_")}
    environ.update(PYTHONPATH=str(REPO), COLUMNS="200", **env)
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
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
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """A generated project whose backend `strands-cli run --local` started."""
    base = tmp_path_factory.mktemp("local")
    created = strands_cli("init", "live-agent", "--output-dir", str(base), cwd=base)
    assert created.returncode == 0, created.stdout + created.stderr
    root = base / "live-agent"
    port = _port()
    started = strands_cli("run", "--local", "--port", str(port), cwd=root)
    running = Backend(root, f"http://127.0.0.1:{port}")
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


def test_session_check_passes(backend: Backend) -> None:
    result = strands_cli("session", "check", "--url", backend.url, cwd=backend.root)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "is ready" in result.stdout


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
    assert "4 passed" in result.stdout and "skipped" not in result.stdout, result.stdout


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


def test_run_local_reports_a_backend_that_exits(tmp_path: Path) -> None:
    created = strands_cli("init", "broken-agent", "--output-dir", str(tmp_path), cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    root = tmp_path / "broken-agent"

    result = strands_cli("run", "--local", "--port", str(_port()), cwd=root, LOG_LEVEL="loud")

    assert result.returncode == 1
    assert "the local backend exited" in result.stderr
    assert "LOG_LEVEL" in result.stderr
    assert not (root / ".session-backend" / "server.pid").exists()
