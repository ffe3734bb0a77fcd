"""Routers and what they share: the per-process services, path parameters, cached reads."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import Depends, Path, Query, Request, Response

from service.cache import Entry, ResponseCache
from service.db import Database
from service.http import none_match, not_modified, respond_raw
from service.listener import InvalidationListener
from service.models import MAX_MESSAGE_ID, ErrorEnvelope, Id
from service.paging import Cursors
from service.settings import Settings
from service.sweeper import Sweeper


@dataclass
class Services:
    """What one service process holds for its requests."""

    settings: Settings
    db: Database
    cache: ResponseCache
    cursors: Cursors = field(default_factory=lambda: Cursors(""))
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    listener: InvalidationListener | None = None
    sweeper: Sweeper | None = None


async def _services(request: Request) -> Services:
    # async: a plain `def` dependency would run in a worker thread, a hand-off per request.
    return request.app.state.services  # type: ignore[no-any-return]


Svc = Annotated[Services, Depends(_services)]
SessionId = Annotated[Id, Path(description="Session id (percent-encoded).")]
AgentId = Annotated[Id, Path(description="Agent id (percent-encoded).")]
MultiAgentId = Annotated[Id, Path(description="Multi-agent id (percent-encoded).")]
MessageIdPath = Annotated[int, Path(ge=0, le=MAX_MESSAGE_ID, description="Message id.")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]
Cursor = Annotated[
    str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")
]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give (plus 503 and 422 everywhere)."""
    described = {
        304: "Not modified (If-None-Match matched).",
        401: "Missing or wrong API key.",
        404: "Not found.",
        409: "The id exists with different content; or the session is leased: `session_busy` "
        "(no X-Session-Lease while a live lease is held) or `lease_lost` (a stale token).",
        412: "If-Match did not match the stored version.",
        413: "Body too large.",
        415: "Body is not application/json.",
        422: "Invalid id, body or query.",
        503: "Database unavailable; retry after Retry-After seconds.",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for status in (*statuses, 422, 503):
        entry: dict[str, Any] = {"description": described[status]}
        if status != 304:
            entry["model"] = ErrorEnvelope
        out[status] = entry
    return out


def location(*parts: str | int) -> dict[str, str]:
    return {"Location": "/api/v1/" + "/".join(_segment(str(p)) for p in parts)}


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _segment(part: str) -> str:
    # Most ids need no escaping: one match instead of quote()'s few calls each.
    return part if _UNRESERVED.fullmatch(part) else quote(part, safe="")


async def cached_read(
    request: Request,
    cache: ResponseCache,
    session_id: str,
    key: str,
    current: Callable[[], Awaitable[tuple[int, int | None] | None]],
    load: Callable[[], Awaitable[tuple[dict[str, Any], int, int | None, datetime | None]]],
) -> Response:
    """GET through the cache: `current()` gives (version, count) for strict checks, `load()`
    the full body with them and the session's expiry. Fills the cache only from committed
    reads."""
    entry = await cache.get(key)
    if (
        entry is not None
        and cache.strict
        and await current() != (entry.version, entry.message_count)
    ):
        entry = None
    cache.count(entry is not None)
    if entry is None:
        generation = cache.generation
        body, version, count, expires_at = await load()
        entry = Entry(
            version,
            count,
            orjson.dumps(body),
            None if expires_at is None else expires_at.timestamp(),
        )
        await cache.put(session_id, key, entry, generation)
    if none_match(request, entry.version):
        return not_modified(entry.version)
    return respond_raw(entry.body, entry.version)
