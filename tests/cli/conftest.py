"""Fixtures of the CLI tests: a CLI runner, generated projects, a stand-in `docker`, and a tiny
HTTP server whose answers each test chooses."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from strands_session_cli.main import cli


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    """Pick a TCP port nothing listens on right now."""
    return _free_port


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `strands-cli ARGS` in-process, in `cwd` when given; never raises."""
    # Settings read by the CLI must come from each test, not the developer's shell.
    for name in ("SESSION_BACKEND_URL", "SESSION_BACKEND_API_KEY", "SESSION_BACKEND_PORT"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, cwd: Path | None = None) -> Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def make_project(tmp_path: Path, invoke: Callable[..., Result]) -> Callable[..., Path]:
    """Generate a project with `strands-cli init NAME --session-state STATE` under tmp_path."""

    def make(name: str = "demo-agent", state: str = "postgresql", *extra: str) -> Path:
        out = tmp_path / "projects"
        result = invoke("init", name, "--session-state", state, "--output-dir", str(out), *extra)
        assert result.exit_code == 0, result.output
        return out / name

    return make


@dataclass
class FakeDocker:
    """A stand-in `docker` on PATH that records its calls and answers as a healthy engine."""

    bin_dir: Path
    log: Path
    no_engine_flag: Path

    def records(self) -> list[dict[str, Any]]:
        """Every call: its arguments and the port variables compose.yaml would see."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def calls(self) -> list[list[str]]:
        """Every argument list `docker` was called with, in order."""
        return [record["args"] for record in self.records()]

    def compose_calls(self) -> list[list[str]]:
        """The `docker compose -f ...` calls (not `compose version`)."""
        return [c for c in self.calls() if c[:2] == ["compose", "-f"]]

    def compose_ports(self) -> list[dict[str, str | None]]:
        """For each `docker compose -f ...` call, the port variables in its environment."""
        return [r["env"] for r in self.records() if r["args"][:2] == ["compose", "-f"]]

    def lose_engine(self) -> None:
        """From now on `docker info` fails as it does when no daemon runs."""
        self.no_engine_flag.touch()


_DOCKER_SCRIPT = """#!{python}
import json, os, pathlib, sys
args = sys.argv[1:]
env = {{name: os.environ.get(name) for name in ("SESSION_BACKEND_PORT", "API_PORT")}}
with open({log!r}, "a") as log:
    log.write(json.dumps({{"args": args, "env": env}}) + "\\n")
if args[:1] == ["info"]:
    if pathlib.Path({flag!r}).exists():
        print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
              "Is the docker daemon running?", file=sys.stderr)
        sys.exit(1)
    print("27.3.1")
elif args[:2] == ["compose", "version"]:
    print("Docker Compose version v2.29.7")
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    """Put the stand-in `docker` first on PATH."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    fake = FakeDocker(bin_dir, tmp_path / "docker-calls.jsonl", tmp_path / "no-engine")
    script = bin_dir / "docker"
    script.write_text(
        _DOCKER_SCRIPT.format(
            python=sys.executable, log=str(fake.log), flag=str(fake.no_engine_flag)
        )
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return fake


@dataclass
class StubServer:
    """A local HTTP server answering each path with the (status, body) set in `routes`."""

    url: str
    routes: dict[str, tuple[int, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def answer(self, path: str, status: int, body: Any = None) -> None:
        """Answer GET `path` with `status` and the JSON `body`."""
        self.routes[path] = (status, body)


@contextmanager
def running_stub() -> Iterator[StubServer]:
    """A stub backend on a free port: 200 everywhere until told otherwise."""
    stub = StubServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            stub.requests.append((path, self.headers.get("Authorization")))
            status, body = stub.routes.get(path, (200, {"status": "ready"}))
            payload = json.dumps(body if body is not None else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    """A stub backend: 200 everywhere until told otherwise."""
    with running_stub() as stub:
        yield stub


@pytest.fixture
def other_stub_server() -> Iterator[StubServer]:
    """A second, unrelated stub backend."""
    with running_stub() as stub:
        yield stub


@pytest.fixture
def error_body() -> Callable[[str, str], dict[str, Any]]:
    """Build the service's error envelope for a code and message."""

    def build(code: str, message: str) -> dict[str, Any]:
        return {"error": {"code": code, "message": message, "request_id": "test"}}

    return build
