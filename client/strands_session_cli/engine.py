"""Docker Compose, driven through the `docker` command.

`engine_problem()` says, in plain words, why no Docker engine can be used (or `None` when one
can); `compose_up` / `compose_down` run `docker compose -f FILE up -d --wait` / `down` with the
user's terminal attached, so compose's own progress output shows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

INFO_TIMEOUT = 20.0


class ComposeError(RuntimeError):
    """`docker compose` exited with a failure."""


def _docker() -> str | None:
    return shutil.which("docker")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def engine_problem() -> str | None:
    """Why Docker cannot be used here, or `None` when an engine and compose v2 answer."""
    docker = _docker()
    if docker is None:
        return "Docker is not installed: there is no `docker` command on PATH."
    checks = (
        (["info", "--format", "{{.ServerVersion}}"], "No Docker engine is reachable"),
        (["compose", "version"], "Docker Compose v2 is not available"),
    )
    for args, failure in checks:
        try:
            result = subprocess.run(
                [docker, *args], capture_output=True, text=True, timeout=INFO_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            return f"{failure}: `docker {args[0]}` did not answer within {INFO_TIMEOUT:g} s."
        except OSError as exc:
            return f"{failure}: `docker {args[0]}` could not run ({exc})."
        if result.returncode != 0:
            why = _last_line(result.stderr or result.stdout)
            return f"{failure}: `docker {args[0]}` failed ({why})."
    return None


def _compose(file: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
    docker = _docker()
    if docker is None:
        raise ComposeError("there is no `docker` command on PATH")
    command = [docker, "compose", "-f", str(file), *args]
    # Variables given here win over the shell's and the .env file's, for compose.yaml's ${...}.
    result = subprocess.run(command, check=False, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        shown = " ".join(["docker", "compose", "-f", str(file), *args])
        raise ComposeError(f"`{shown}` exited with status {result.returncode}")


def compose_up(file: Path, env: Mapping[str, str] | None = None) -> None:
    """Start the stack of `file` in the background and wait until its services are healthy."""
    _compose(file, "up", "-d", "--wait", env=env)


def compose_down(file: Path, env: Mapping[str, str] | None = None) -> None:
    """Stop and remove the containers of `file` (named volumes, and so the data, stay)."""
    _compose(file, "down", env=env)
