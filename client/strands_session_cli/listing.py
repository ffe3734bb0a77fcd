"""`strands-cli session list`: the sessions a running backend keeps, newest first.

Talks to the backend like `session export` (`--url`, `--api-key`, defaulting to
SESSION_BACKEND_URL / SESSION_BACKEND_API_KEY), following the API's pages up to `--limit`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
import httpx
from rich.markup import escape
from rich.table import Table

from .transfer import _client, _failed, _transport, key_option, url_option
from .ui import console

PAGE = 1000


@click.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--created-after", type=click.DateTime(), help="Only sessions created after (UTC).")
@click.option("--created-before", type=click.DateTime(), help="Only sessions created before (UTC).")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line instead of a table."
)
@url_option
@key_option
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per request.")
def list_command(
    limit: int,
    created_after: datetime | None,
    created_before: datetime | None,
    as_json: bool,
    url: str | None,
    api_key: str | None,
    timeout: float,
) -> None:
    """List the stored sessions, newest first."""
    filters: dict[str, Any] = {}
    for name, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None:
            filters[name] = value.isoformat() + ("" if value.tzinfo else "+00:00")
    sessions: list[dict[str, Any]] = []
    with _client(url, api_key, timeout) as client:
        params: dict[str, Any] = dict(filters)
        root = str(client.base_url).rstrip("/")
        try:
            while len(sessions) < limit:
                wanted = min(PAGE, limit - len(sessions))
                # The collection itself: a relative "" would gain a trailing slash (a redirect).
                response = client.get(root, params={**params, "limit": wanted})
                if response.status_code != 200:
                    raise _failed(response, "listing sessions")
                page = response.json()
                sessions += page["items"]
                if not page["next_cursor"]:
                    break
                params = {**filters, "cursor": page["next_cursor"]}
        except httpx.HTTPError as exc:
            raise _transport(exc, client) from None
    if as_json:
        for item in sessions:
            click.echo(json.dumps(item, ensure_ascii=False))
        return
    table = Table("session_id", "type", "created_at", "updated_at", box=None)
    for item in sessions:
        table.add_row(
            escape(item["session_id"]), item["session_type"], item["created_at"], item["updated_at"]
        )
    console.print(table)
    console.print(f"{len(sessions)} session(s)")
