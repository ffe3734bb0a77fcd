"""Where things are: the generated project around the working directory, and this repository.

A project made by `strands-cli init` carries a `[tool.strands-cli]` table in its pyproject.toml;
`find_project` walks up from a directory to the nearest one. `backend_compose_file` is the
session backend's own compose.yaml, in the checkout this CLI comes from (`locate`).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .locate import checkout

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Project:
    """A generated project: its folder, package and session state."""

    root: Path
    package: str
    session_state: str

    @property
    def compose_file(self) -> Path:
        """The compose file that runs the project's session backend."""
        return self.root / "compose.yaml"


def find_project(start: Path) -> Project | None:
    """The generated project holding `start`, or `None`."""
    for folder in (start.absolute(), *start.absolute().parents):
        pyproject = folder / "pyproject.toml"
        if not pyproject.is_file():
            continue
        try:
            table = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        marker = table.get("tool", {}).get("strands-cli")
        if isinstance(marker, dict):
            return Project(
                root=folder,
                package=str(marker.get("package", "")),
                session_state=str(marker.get("session-state", "none")),
            )
    return None


def backend_compose_file() -> Path:
    """The session backend's compose.yaml (in its checkout; a path that does not exist when the
    checkout is unknown, which the commands report)."""
    root = checkout()
    return (root if root is not None else Path("<session backend checkout>")) / "compose.yaml"


def read_env_file(path: Path) -> dict[str, str]:
    """The `NAME=value` lines of a `.env` file, as the generated projects read them."""
    values: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return values
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip().removeprefix("export ").strip()] = value
    return values


def configured(name: str, project: Project | None) -> str | None:
    """A setting from the environment, else from the project's `.env`; blank means unset."""
    value = os.environ.get(name)
    if value is None and project is not None:
        value = read_env_file(project.root / ".env").get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def local_port(url: str) -> int | None:
    """The port of `url` when it names this machine (127.0.0.1, localhost, ::1), else `None`."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.hostname not in LOCAL_HOSTS:
        return None
    return port or (443 if parts.scheme == "https" else 80)


def local_url(port: int) -> str:
    """The URL of a backend listening on this machine's `port`."""
    return f"http://127.0.0.1:{port}"


def update_env_file(path: Path, values: dict[str, str]) -> dict[str, str]:
    """Set `NAME=value` lines of a `.env` file in place (appending missing ones), keeping its
    comments, order and mode; returns the values that changed."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    current = read_env_file(path)
    changed = {name: value for name, value in values.items() if current.get(name) != value}
    if not changed:
        return changed
    pending = dict(changed)
    for index, line in enumerate(lines):
        match = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        if match and match.group(1) in pending:
            lines[index] = f"{match.group(1)}={pending.pop(match.group(1))}"
    lines += [f"{name}={value}" for name, value in pending.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return changed
