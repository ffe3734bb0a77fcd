"""Commands that run and check the session backend: `run`, `stop` and `session up|down|check`.

`run` / `stop` serve the generated project around the working directory (its compose.yaml,
its `.session-backend/` folder); `session up` / `down` use the backend's own compose.yaml and
a `.session-backend/` folder in the working directory. With `--local` the backend runs as a
local process instead of containers.

Inside a project, `SESSION_BACKEND_URL` (the environment, else the project's `.env`) is the one
answer to "where is the backend": `run` starts it on that URL's port, `run --port N` moves it
and rewrites `.env` to match, and `session check`, `stop` and the agent all read the same URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.markup import escape

from .engine import ComposeError, compose_down, compose_up, engine_problem
from .health import check_ready, normalise_url, wait_ready
from .local import STATE_DIR, LocalBackend, LocalBackendError
from .project import (
    Project,
    backend_compose_file,
    configured,
    find_project,
    local_port,
    local_url,
    read_env_file,
    update_env_file,
)
from .ui import Failure, console, fail_unless_ready, print_ready, warn

DEFAULT_PORT = 8000


@dataclass(frozen=True)
class Target:
    """Which backend a command manages: its commands, compose file and local state folder,
    and the variables its compose file takes the published port from."""

    start: str
    stop: str
    compose_file: Path
    state_dir: Path
    compose_env: dict[str, str] = field(default_factory=dict)


def _start(
    target: Target,
    *,
    local: bool,
    port: int,
    url: str,
    api_key: str | None,
    timeout: float,
) -> None:
    if local:
        backend = LocalBackend(target.state_dir)
        if backend.running_pid() is not None:
            running = backend.url() or "?"
            if local_port(running) != port:
                raise Failure(
                    f"a local backend of this project already runs at {running}, not on port "
                    f"{port}",
                    f"stop it with `{target.stop} --local`, then start it again",
                )
            print_ready(url, note="(already running as a local process)")
            return
        with console.status(f"Starting the local backend on port {port} …"):
            try:
                cwd = target.state_dir.parent
                result = backend.start(port, cwd=cwd, api_key=api_key, deadline=timeout)
            except LocalBackendError as exc:
                raise Failure(str(exc)) from None
        if result.problem == "unauthorized":
            warn(result.message, result.hint)
        print_ready(url, note=f"log: {backend.log_file}; stop with `{target.stop}`")
        return
    problem = engine_problem()
    if problem is not None:
        hint = f"run the backend as a local process instead: `{target.start} --local`"
        raise Failure(problem, hint)
    if not target.compose_file.is_file():
        hint = f"run the backend as a local process instead: `{target.start} --local`"
        raise Failure(f"{target.compose_file} not found", hint)
    try:
        compose_up(target.compose_file, target.compose_env)
    except ComposeError as exc:
        raise Failure(str(exc), "the output above says why") from None
    with console.status(f"Waiting for {url}/health/ready …"):
        result = wait_ready(url, api_key, deadline=timeout)
    if result.problem == "unauthorized":
        warn(result.message, result.hint)
    elif not result.ok:
        raise Failure(f"the containers are up, but {result.message}", result.hint)
    print_ready(url, note=f"stop with `{target.stop}`")


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
        # Nothing to stop: no local process, and no engine any containers could run in.
        console.print(
            f"No session backend is running here: no local process (in {target.state_dir}), "
            f"and no containers to stop ({problem})"
        )
        return
    if not target.compose_file.is_file():
        console.print(f"No local session backend is running, and {target.compose_file} is gone.")
        return
    try:
        compose_down(target.compose_file, target.compose_env)
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


def project_backend(project: Project, port: int | None) -> tuple[str, int]:
    """The URL and port of the project's backend, with `.env` brought in line with them.

    `port` (from `--port`) moves the backend: `.env` then names the new URL. Without it, the
    backend goes where SESSION_BACKEND_URL points, which must be this machine.
    """
    env_file = project.root / ".env"
    if port is not None:
        url = local_url(port)
        changed = update_env_file(
            env_file, {"SESSION_BACKEND_URL": url, "SESSION_BACKEND_PORT": str(port)}
        )
        if "SESSION_BACKEND_URL" in changed:
            console.print(f"Pointed the project at {escape(url)} (SESSION_BACKEND_URL in .env)")
    else:
        url = configured("SESSION_BACKEND_URL", project) or local_url(DEFAULT_PORT)
        try:
            url = normalise_url(url)
        except ValueError as exc:
            raise Failure(f"SESSION_BACKEND_URL: {exc}", "fix it in .env") from None
        found = local_port(url)
        if found is None:
            raise Failure(
                f"this project's SESSION_BACKEND_URL is {url}: a backend elsewhere, which "
                "`strands-cli run` cannot start",
                "check it with `strands-cli session check`; or run a backend on this machine "
                "and point the project at it with `strands-cli run --local --port 8000`",
            )
        port = found
        # compose.yaml publishes on SESSION_BACKEND_PORT: keep it in step with the URL.
        update_env_file(env_file, {"SESSION_BACKEND_PORT": str(port)})
    exported = os.environ.get("SESSION_BACKEND_URL", "").strip().rstrip("/")
    if exported and exported != url:
        warn(
            f"SESSION_BACKEND_URL={exported} in your environment overrides the project's .env: "
            "the agent and `strands-cli session check` will use that, not this backend",
            f"unset it, or set it to {url}",
        )
    return url, port


def _project_target(project: Project, port: int) -> Target:
    state_dir = project.root / STATE_DIR
    env = {"SESSION_BACKEND_PORT": str(port)}
    return Target("strands-cli run", "strands-cli stop", project.compose_file, state_dir, env)


def _session_target(port: int) -> Target:
    start, stop = "strands-cli session up", "strands-cli session down"
    env = {"API_PORT": str(port)}
    return Target(start, stop, backend_compose_file(), Path.cwd() / STATE_DIR, env)


def _configured_port(variable: str, project: Project | None) -> int:
    value = configured(variable, project)
    return int(value) if value and value.isdigit() else DEFAULT_PORT


port_option = click.option("--port", type=click.IntRange(1, 65535), help="Port on 127.0.0.1.")
timeout_option = click.option(
    "--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for ready."
)


@click.command()
@click.option(
    "--local", is_flag=True, help="Run the backend as a local process instead of containers."
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Serve on this port of 127.0.0.1 and point the project's .env at it "
    "[default: the port of SESSION_BACKEND_URL].",
)
@timeout_option
def run(local: bool, port: int | None, timeout: float) -> None:
    """Start this project's session backend (docker compose up, or --local) and wait for it."""
    project = _require_backend_project()
    api_key = configured("SESSION_BACKEND_API_KEY", project)
    url, chosen = project_backend(project, port)
    target = _project_target(project, chosen)
    _start(target, local=local, port=chosen, url=url, api_key=api_key, timeout=timeout)


@click.command()
@click.option("--local", is_flag=True, help="Stop only the local process; never call Docker.")
def stop(local: bool) -> None:
    """Stop this project's session backend (the local process if one runs, else compose down)."""
    project = _require_backend_project()
    port = read_env_file(project.root / ".env").get("SESSION_BACKEND_PORT", str(DEFAULT_PORT))
    env = {"SESSION_BACKEND_PORT": port}
    target = Target(
        "strands-cli run", "strands-cli stop", project.compose_file, project.root / STATE_DIR, env
    )
    _stop(target, local=local)


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
    url = url or configured("SESSION_BACKEND_URL", project) or local_url(DEFAULT_PORT)
    api_key = api_key or configured("SESSION_BACKEND_API_KEY", project)
    result = check_ready(url, api_key, timeout=timeout)
    fail_unless_ready(result)
    console.print(f"[bold green]OK[/] {result.message}")


@session.command()
@click.option(
    "--local", is_flag=True, help="Run the backend as a local process instead of containers."
)
@port_option
@click.option("--url", help="Where to wait for /health/ready (default: the port).")
@timeout_option
def up(local: bool, port: int | None, url: str | None, timeout: float) -> None:
    """Start the session backend (its compose.yaml, or --local) and wait until it is ready."""
    api_key = configured("SESSION_BACKEND_API_KEY", None)
    chosen = port if port is not None else _configured_port("API_PORT", None)
    base = url.rstrip("/") if url else local_url(chosen)
    target = _session_target(chosen)
    _start(target, local=local, port=chosen, url=base, api_key=api_key, timeout=timeout)


@session.command()
@click.option("--local", is_flag=True, help="Stop only the local process; never call Docker.")
def down(local: bool) -> None:
    """Stop the session backend started by `session up`."""
    _stop(_session_target(_configured_port("API_PORT", None)), local=local)
