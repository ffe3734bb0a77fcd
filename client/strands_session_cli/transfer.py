"""`strands-cli session export ID > file` and `strands-cli session import FILE [--replace]`.

Both talk to a running backend (`--url`, `--api-key`, defaulting like `session check` to
SESSION_BACKEND_URL / SESSION_BACKEND_API_KEY from the environment or the project's `.env`).
`export` copies the NDJSON stream to stdout as it arrives and fails (exit 1, a message on stderr)
when the stream breaks off, so a half-written file never passes for a whole one. `import`
uploads a file (or `-` for stdin) as is; the backend restores it all or nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO
from urllib.parse import quote

import click
import httpx
from rich.markup import escape

from .health import _error_text, normalise_url, start_hint
from .project import configured, find_project
from .ui import Failure, console

NDJSON = "application/x-ndjson"
DEFAULT_URL = "http://127.0.0.1:8000"

url_option = click.option("--url", help="Backend base URL [default: SESSION_BACKEND_URL or :8000].")
key_option = click.option("--api-key", help="Bearer key [default: SESSION_BACKEND_API_KEY].")
timeout_option = click.option(
    "--timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds to wait for the backend between bytes.",
)


def _client(url: str | None, api_key: str | None, timeout: float) -> httpx.Client:
    project = find_project(Path.cwd())
    url = url or configured("SESSION_BACKEND_URL", project) or DEFAULT_URL
    api_key = api_key or configured("SESSION_BACKEND_API_KEY", project)
    try:
        base = normalise_url(url)
    except ValueError as exc:
        raise Failure(str(exc), "use e.g. http://127.0.0.1:8000") from None
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=base + "/api/v1/sessions", headers=headers, timeout=timeout)


def _failed(response: httpx.Response, what: str) -> Failure:
    hint = None
    if response.status_code == 401:
        hint = "pass the right key with --api-key or SESSION_BACKEND_API_KEY."
    elif response.status_code == 409:
        hint = "pass --replace to replace the stored session with the file's."
    return Failure(f"{what} failed ({response.status_code}): {_error_text(response)}", hint)


def _transport(exc: httpx.HTTPError, client: httpx.Client) -> Failure:
    if isinstance(exc, httpx.ConnectError):
        return Failure(
            f"cannot connect to {client.base_url}: {exc}", start_hint(str(client.base_url))
        )
    return Failure(f"the transfer with {client.base_url} broke off: {exc!r}")


@click.command("export")
@click.argument("session_id")
@url_option
@key_option
@timeout_option
def export_command(session_id: str, url: str | None, api_key: str | None, timeout: float) -> None:
    """Write session SESSION_ID (agents, messages, multi-agent states) to stdout as NDJSON."""
    out = click.open_file("-", "wb")
    with _client(url, api_key, timeout) as client:
        try:
            with client.stream("GET", f"/{quote(session_id, safe='')}/export") as response:
                if response.status_code != 200:
                    response.read()
                    raise _failed(response, f"export of {session_id!r}")
                for chunk in response.iter_raw():
                    out.write(chunk)
                out.flush()
        except httpx.HTTPError as exc:
            raise _transport(exc, client) from None


@click.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--replace", is_flag=True, help="Replace the session if it exists (atomically).")
@url_option
@key_option
@timeout_option
def import_command(
    file: IO[bytes], replace: bool, url: str | None, api_key: str | None, timeout: float
) -> None:
    """Restore a session from FILE (an export; `-` reads stdin), all or nothing."""
    with _client(url, api_key, timeout) as client:
        try:
            response = client.post(
                "/import",
                content=file.read(),
                headers={"Content-Type": NDJSON},
                params={"replace": "true"} if replace else None,
            )
        except httpx.HTTPError as exc:
            raise _transport(exc, client) from None
    if response.status_code != 201:
        raise _failed(response, "import")
    session_id = response.json()["session_id"]
    console.print(
        f"[bold green]Imported[/] session {escape(session_id)}"
        + (" (replacing the stored one)" if replace else "")
    )
