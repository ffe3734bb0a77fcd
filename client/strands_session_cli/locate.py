"""Where the session backend lives, seen from wherever `strands-cli` is installed.

`strands-cli` ships in the client distribution (`strands-session-client`, the checkout's
`client/` folder), which agent projects install. Two commands need more than the client:
`run --local` runs the backend's server (`python -m service`), and `session up` uses the
backend's own compose.yaml. Both are found in this order:

1. the environment `strands-cli` runs in, when it can import the server (a checkout's `.venv`);
2. the checkout `strands-cli` was installed from: its folder when installed in editable mode or
   run from the tree, else the local path pip recorded (`direct_url.json`); the server then runs
   with that checkout's `.venv/bin/python` (made by `make install` or `make run` there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import unquote, urlsplit

DISTRIBUTION = "strands-session-client"


class ServerNotFound(RuntimeError):
    """Neither this environment nor a known checkout can run the backend's server."""


@dataclass(frozen=True)
class Server:
    """How to start `python -m service`: the interpreter, and the folder holding `service`."""

    python: str
    import_root: Path


def _is_checkout(folder: Path) -> bool:
    return (folder / "service" / "__main__.py").is_file() and (folder / "client").is_dir()


def _recorded_source() -> Path | None:
    """The local folder pip installed the client distribution from, when it recorded one."""
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        url = urlsplit(str(json.loads(text).get("url", "")))
    except (ValueError, AttributeError):
        return None
    return Path(unquote(url.path)) if url.scheme == "file" else None


def checkout() -> Path | None:
    """The session backend's source checkout this CLI comes from, when it can be told."""
    here = Path(__file__).resolve().parents[2]  # <checkout>/client/strands_session_cli/
    recorded = _recorded_source()
    candidates = [here, *([recorded.parent] if recorded is not None else [])]
    return next((folder for folder in candidates if _is_checkout(folder)), None)


def client_source() -> Path | None:
    """The folder to `pip install` the client distribution from, when known."""
    root = checkout()
    return root / "client" if root is not None else None


def server(python: str) -> Server:
    """How to run the backend's server; raises ServerNotFound saying what to do."""
    try:
        spec = find_spec("service.embedded")
    except ModuleNotFoundError:
        spec = None
    if spec is not None and spec.origin and find_spec("service.app") is not None:
        return Server(python, Path(spec.origin).resolve().parents[1])
    root = checkout()
    if root is not None:
        venv_python = root / ".venv" / "bin" / "python"
        if venv_python.is_file():
            return Server(str(venv_python), root)
        raise ServerNotFound(
            f"the session backend's server is not installed in its checkout {root}: "
            f"run `make install` there (it creates {venv_python}), then try again"
        )
    raise ServerNotFound(
        "cannot find the session backend's server (`python -m service`): it is not installed "
        f"in this environment ({python}), and this strands-cli was not installed from a "
        "checkout of the session backend. Run `make install` in a checkout and use its "
        "strands-cli, or install this project's client from that checkout "
        "(`pip install <checkout>/client`)"
    )
