"""`strands-cli`: the click group and `init`; the backend commands live in `backend.py`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click
from rich.markup import escape

from .backend import run, session, stop
from .health import check_ready
from .listing import list_command
from .project import local_port
from .scaffold import (
    DEFAULT_SESSION_URL,
    SESSION_STATES,
    ProjectSpec,
    ScaffoldError,
    validate_name,
    write_project,
)
from .transfer import export_command, import_command
from .ui import Failure, console, warn


def _version() -> str:
    try:
        return version("strands-session-client")
    except PackageNotFoundError:
        return "unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="strands-cli")
def cli() -> None:
    """Create Strands agent projects and run the session backend they keep conversations in."""


def _valid_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        validate_name(value)
    except ScaffoldError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@cli.command()
@click.argument("name", callback=_valid_name)
@click.option(
    "--session-state",
    type=click.Choice(SESSION_STATES),
    help="Where conversations are kept: `postgresql` wires the project to this session "
    "backend; `file` keeps them as local files; `none` (the default, unless --session-url or "
    "--api-key is given) keeps nothing.",
)
@click.option("--session-url", help=f"Session backend URL [default: {DEFAULT_SESSION_URL}].")
@click.option("--api-key", help="Bearer key for the session backend (written to .env only).")
@click.option("--description", default="A helpful assistant.", help="The agent's system prompt.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder the project folder is created in.",
)
@click.option("--force", is_flag=True, help="Overwrite the generated files of an existing folder.")
@click.option("--strict", is_flag=True, help="Fail (and write nothing) if --session-url is down.")
def init(
    name: str,
    session_state: str | None,
    session_url: str | None,
    api_key: str | None,
    description: str,
    output_dir: Path,
    force: bool,
    strict: bool,
) -> None:
    """Create the Strands agent project NAME (e.g. `travel-agent`) in a new folder."""
    if session_state is None:
        session_state = "postgresql" if (session_url or api_key) else "none"
    if session_state != "postgresql" and (session_url or api_key):
        raise click.UsageError("--session-url and --api-key need --session-state=postgresql")
    try:
        spec = ProjectSpec(
            name,
            session_state=session_state,
            session_url=session_url or DEFAULT_SESSION_URL,
            api_key=api_key,
            description=description,
        )
    except ScaffoldError as exc:
        raise Failure(str(exc)) from None
    root = output_dir / name
    if root.exists() and not force:
        raise Failure(f"{root} already exists", "pass --force to overwrite its generated files")
    readiness = check_ready(session_url, api_key) if session_url else None
    if readiness is not None and not readiness.ok and strict:
        raise Failure(f"session backend check failed: {readiness.message}", readiness.hint)
    try:
        root = write_project(spec, output_dir, force=force)
    except (ScaffoldError, OSError) as exc:
        raise Failure(str(exc)) from None
    _print_next_steps(spec, root)
    if readiness is not None:
        if readiness.ok:
            console.print(f"[bold green]OK[/] {escape(readiness.message)}")
        else:
            warn(f"session backend check failed: {readiness.message}", readiness.hint)


def _print_next_steps(spec: ProjectSpec, root: Path) -> None:
    console.print(
        f"[bold green]Created[/] {escape(str(root))} "
        f"(package {spec.package}, session state {spec.session_state})"
    )
    steps = [f"cd {root}", "python -m venv .venv && . .venv/bin/activate"]
    if spec.session_state == "postgresql":
        steps.append(f"pip install {spec.context()['client_source']}   # client and strands-cli")
    steps.append("pip install -e '.[test]'")
    if spec.session_state == "postgresql" and local_port(spec.session_url) is not None:
        steps.append("strands-cli run        # or: strands-cli run --local (no Docker)")
    elif spec.session_state == "postgresql":
        steps.append("strands-cli session check")
    session = " --session-id demo" if spec.session_state != "none" else ""
    steps += [f'python -m {spec.package}{session} "Hello!"', "pytest"]
    console.print("Next steps:")
    for step in steps:
        console.print(f"  {escape(step)}")


cli.add_command(run)
cli.add_command(stop)
cli.add_command(session)
session.add_command(export_command)
session.add_command(import_command)
session.add_command(list_command)
