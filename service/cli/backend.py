"""Commands that run and check the session backend: `run`, `stop` and `session up|down|check`.

`run` / `stop` serve the generated project around the working directory (its compose.yaml,
its `.session-backend/` folder); `session up` / `down` use the backend's own compose.yaml and
a `.session-backend/` folder in the working directory. With `--local` (or without a Docker
engine, once the user asks for it) the backend runs as a local process instead of containers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from .engine import ComposeError, compose_down, compose_up, engine_problem
from .health import check_ready, wait_ready
from .local import STATE_DIR, LocalBackend, LocalBackendError
from .project import Project, backend_compose_file, configured, find_project
from .ui import Failure, console, fail_unless_ready, print_ready, warn

DEFAULT_PORT = 8000


@dataclass(frozen=True)
class Target:
    """Which backend a command manages: its commands, compose file and local state folder."""

    start: str
    stop: str
    compose_file: Path
    state_dir: Path


def _start(
    target: Target,
    *,
    local: bool,
    port: int,
    url: str | None,
    api_key: str | None,
    timeout: float,
) -> None:
    if local:
        backend = LocalBackend(target.state_dir)
        if backend.running_pid() is not None:
            print_ready(backend.url() or "?", note="(already running as a local process)")
            return
        with console.status(f"Starting the local backend on port {port} …"):
            try:
                cwd = target.state_dir.parent
                result = backend.start(port, cwd=cwd, api_key=api_key, deadline=timeout)
            except LocalBackendError as exc:
                raise Failure(str(exc)) from None
        if result.problem == "unauthorized":
            warn(result.message, result.hint)
        print_ready(result.url, note=f"log: {backend.log_file}; stop with `{target.stop} --local`")
        return
    problem = engine_problem()
    if problem is not None:
        hint = f"run the backend as a local process instead: `{target.start} --local`"
        raise Failure(problem, hint)
    if not target.compose_file.is_file():
        hint = f"run the backend as a local process instead: `{target.start} --local`"
        raise Failure(f"{target.compose_file} not found", hint)
    try:
        compose_up(target.compose_file)
    except ComposeError as exc:
        raise Failure(str(exc), "the output above says why") from None
    base = url or f"http://127.0.0.1:{port}"
    with console.status(f"Waiting for {base}/health/ready …"):
        result = wait_ready(base, api_key, deadline=timeout)
    if result.problem == "unauthorized":
        warn(result.message, result.hint)
    elif not result.ok:
        raise Failure(f"the containers are up, but {result.message}", result.hint)
    print_ready(base, note=f"stop with `{target.stop}`")


def _stop(target: Target, *, local: bool) -> None:
    backend = LocalBackend(target.state_dir)
    if local or backend.running_pid() is not None:
        if backend.stop():
            console.print("[bold green]Stopped[/] the local session backend.")
        else:
            console.print(f"No local session backend is running (in {target.state_dir}).")
        return
    problem = engine_problem()
    if problem is not None:
        raise Failure(problem, f"a backend started with --local stops with `{target.stop} --local`")
    try:
        compose_down(target.compose_file)
    except ComposeError as exc:
        raise Failure(str(exc), "the output above says why") from None
    console.print("[bold green]Stopped[/] the session backend containers (the data volume stays).")


def _require_backend_project() -> Project:
    project = find_project(Path.cwd())
    if project is None:
        raise Failure(
            "not inside a project made by `strands-cli init` (no [tool.strands-cli] in any "
            "pyproject.toml here or above)",
            "cd into such a project, or start a backend anywhere with `strands-cli session up`",
        )
    if project.session_state != "postgresql":
        raise Failure(
            f"this project keeps its sessions with session state {project.session_state!r}; "
            "it has no session backend to run",
            "use `strands-cli session up` to run a backend anyway",
        )
    return project


def _project_target(project: Project) -> Target:
    state_dir = project.root / STATE_DIR
    return Target("strands-cli run", "strands-cli stop", project.compose_file, state_dir)


def _session_target() -> Target:
    start, stop = "strands-cli session up", "strands-cli session down"
    return Target(start, stop, backend_compose_file(), Path.cwd() / STATE_DIR)


def _port(option: int | None, variable: str, project: Project | None) -> int:
    if option is not None:
        return option
    value = configured(variable, project)
    return int(value) if value and value.isdigit() else DEFAULT_PORT


local_option = click.option(
    "--local", is_flag=True, help="Run the backend as a local process instead of containers."
)
port_option = click.option("--port", type=click.IntRange(1, 65535), help="Port on 127.0.0.1.")
url_option = click.option("--url", help="Where to wait for /health/ready (default: the port).")
timeout_option = click.option(
    "--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for ready."
)


@click.command()
@local_option
@port_option
@url_option
@timeout_option
def run(local: bool, port: int | None, url: str | None, timeout: float) -> None:
    """Start this project's session backend (docker compose up, or --local) and wait for it."""
    project = _require_backend_project()
    api_key = configured("SESSION_BACKEND_API_KEY", project)
    chosen = _port(port, "SESSION_BACKEND_PORT", project)
    target = _project_target(project)
    _start(target, local=local, port=chosen, url=url, api_key=api_key, timeout=timeout)


@click.command()
@local_option
def stop(local: bool) -> None:
    """Stop this project's session backend (the local process if one runs, else compose down)."""
    project = _require_backend_project()
    _stop(_project_target(project), local=local)


@click.group()
def session() -> None:
    """Run or check a session backend from anywhere."""


@session.command()
@click.option("--url", help="Backend base URL [default: SESSION_BACKEND_URL or :8000].")
@click.option("--api-key", help="Bearer key [default: SESSION_BACKEND_API_KEY].")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds per request.")
def check(url: str | None, api_key: str | None, timeout: float) -> None:
    """Check that the backend answers /health/ready and accepts the API key."""
    project = find_project(Path.cwd())
    url = url or configured("SESSION_BACKEND_URL", project) or f"http://127.0.0.1:{DEFAULT_PORT}"
    api_key = api_key or configured("SESSION_BACKEND_API_KEY", project)
    result = check_ready(url, api_key, timeout=timeout)
    fail_unless_ready(result)
    console.print(f"[bold green]OK[/] {result.message}")


@session.command()
@local_option
@port_option
@url_option
@timeout_option
def up(local: bool, port: int | None, url: str | None, timeout: float) -> None:
    """Start the session backend (its compose.yaml, or --local) and wait until it is ready."""
    api_key = configured("SESSION_BACKEND_API_KEY", None)
    chosen = _port(port, "API_PORT", None)
    _start(_session_target(), local=local, port=chosen, url=url, api_key=api_key, timeout=timeout)


@session.command()
@local_option
def down(local: bool) -> None:
    """Stop the session backend started by `session up`."""
    _stop(_session_target(), local=local)
