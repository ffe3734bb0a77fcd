"""The pages of the session browser: sessions, a session, a conversation, an agent's state.

Each page is one or two named queries of `sql/ui.sql` on the service's pool, then a template.
Lists are keyset-paged with the service's signed cursors. Nothing here writes: every route is a
GET but the login, which only sets a cookie.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from service import transfer
from service.http import NDJSONStream
from service.models import MAX_MESSAGE_ID, SESSION_TYPES
from service.paging import session_position
from service.queries import Q
from service.routes import Svc
from service.ui import content
from service.ui.web import (
    SECURITY_HEADERS,
    PageError,
    UIRoute,
    authorized,
    page,
    valid_id,
)

router = APIRouter(route_class=UIRoute, include_in_schema=False)
Authorized = Annotated[None, Depends(authorized)]
PageSize = Annotated[int, Query(ge=1, le=500)]


def _time(name: str, value: str) -> datetime | None:
    """A filter time from the form: ISO 8601; without a zone it is UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PageError(400, f"{name}: {value!r} is not a date and time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.get("/")
async def landing(request: Request) -> Response:
    """The service's front page: what it is and where to look."""
    return page(request, "landing.html")


@router.get("/ui")
async def sessions_page(
    request: Request,
    svc: Svc,
    _: Authorized,
    limit: PageSize = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    created_after: str = "",
    created_before: str = "",
    session_type: str = "",
    prefix: Annotated[str, Query(max_length=255)] = "",
) -> Response:
    """Sessions, newest first, with the API's filters and a session id prefix search."""
    after, before = _time("created after", created_after), _time("created before", created_before)
    if session_type and session_type not in SESSION_TYPES:
        raise PageError(400, f"type: {session_type!r} is not a session type")
    scope = f"ui-sessions|{after}|{before}|{session_type}|{prefix}"
    at, sid = svc.cursors.read(scope, cursor) if cursor else (None, None)
    rows = await svc.db.run(
        _fetch,
        "ui_list_sessions",
        after,
        before,
        session_type or None,
        prefix or None,
        datetime.fromisoformat(at) if at else None,
        sid,
        limit + 1,
    )
    rows, next_cursor = svc.cursors.page(scope, rows, limit, session_position)
    filters = {
        "created_after": created_after,
        "created_before": created_before,
        "session_type": session_type,
        "prefix": prefix,
    }
    return page(
        request,
        "sessions.html",
        sessions=rows,
        filters=filters,
        types=SESSION_TYPES,
        limit=limit,
        paged=cursor is not None,
        next_cursor=next_cursor,
    )


async def _fetch(conn: Any, name: str, *args: Any) -> list[Any]:
    return list(await conn.fetch(Q[name], *args))


async def _fetchrow(conn: Any, name: str, *args: Any) -> Any:
    return await conn.fetchrow(Q[name], *args)


@router.get("/ui/sessions/{session_id}")
async def session_page(
    request: Request,
    session_id: str,
    svc: Svc,
    _: Authorized,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    limit: PageSize = 100,
) -> Response:
    """A session: its agents (paged), its multi-agent states, its expiry, its export."""
    session_id = valid_id(session_id)
    session = await svc.db.run(_fetchrow, "ui_session", session_id)
    if session is None:
        raise PageError(404, f"There is no session {session_id!r} (or it has expired).")
    scope = f"ui-agents|{session_id}"
    after = svc.cursors.read(scope, cursor)[0] if cursor else None
    agents = await svc.db.run(_fetch, "ui_session_agents", session_id, after, limit + 1)
    agents, next_cursor = svc.cursors.page(scope, agents, limit, lambda r: [r["agent_id"]])
    multi_agents = [
        {**m, "pretty": content.pretty(m["state"])} for m in content.parse(session["multi_agents"])
    ]
    return page(
        request,
        "session.html",
        session=session,
        agents=agents,
        multi_agents=multi_agents,
        next_cursor=next_cursor,
        paged=cursor is not None,
    )


@router.get("/ui/sessions/{session_id}/export")
async def export_download(session_id: str, svc: Svc, _: Authorized) -> Response:
    """The session's NDJSON export (as the API's export route gives it), as a download."""
    session_id = valid_id(session_id)
    records = transfer.export_session(svc.db, session_id)
    first = await anext(records)  # 404 here, before anything is sent
    response = NDJSONStream(first, records)
    filename = quote(f"session-{session_id}.ndjson", safe="")
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{filename}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


async def _agent(svc: Any, session_id: str, agent_id: str) -> Any:
    row = await svc.db.run(_fetchrow, "ui_agent", session_id, agent_id)
    if row is None:
        raise PageError(
            404, f"There is no agent {agent_id!r} in session {session_id!r} (or it has expired)."
        )
    return row


@router.get("/ui/sessions/{session_id}/agents/{agent_id}")
async def conversation_page(
    request: Request,
    session_id: str,
    agent_id: str,
    svc: Svc,
    _: Authorized,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    limit: PageSize = 100,
) -> Response:
    """One agent's conversation as a chat, a page of messages at a time."""
    session_id, agent_id = valid_id(session_id), valid_id(agent_id)
    agent = await _agent(svc, session_id, agent_id)
    scope = f"ui-messages|{session_id}|{agent_id}"
    after = svc.cursors.read(scope, cursor)[0] if cursor else None
    rows = await svc.db.run(_fetch, "ui_messages", session_id, agent_id, after, limit + 1)
    rows, next_cursor = svc.cursors.page(scope, rows, limit, lambda r: [r["message_id"]])
    return page(
        request,
        "conversation.html",
        agent=agent,
        messages=[content.message_view(r) for r in rows],
        next_cursor=next_cursor,
        paged=cursor is not None,
        limit=limit,
    )


@router.get("/ui/sessions/{session_id}/agents/{agent_id}/state")
async def state_page(
    request: Request, session_id: str, agent_id: str, svc: Svc, _: Authorized
) -> Response:
    """An agent's state, conversation manager state and internal state, pretty-printed."""
    agent = await _agent(svc, valid_id(session_id), valid_id(agent_id))
    states = [
        (name, content.pretty(content.parse(agent[column])))
        for name, column in (
            ("state", "state"),
            ("conversation_manager_state", "conversation_manager_state"),
            ("_internal_state", "internal_state"),
        )
    ]
    return page(request, "state.html", agent=agent, states=states)


async def _message(svc: Any, session_id: str, agent_id: str, message_id: int) -> Any:
    session_id, agent_id = valid_id(session_id), valid_id(agent_id)
    if not 0 <= message_id <= MAX_MESSAGE_ID:
        raise PageError(404, f"There is no message {message_id}.")
    row = await svc.db.run(_fetchrow, "ui_message", session_id, agent_id, message_id)
    if row is None:
        raise PageError(404, f"There is no message {message_id} of agent {agent_id!r}.")
    return row


@router.get("/ui/sessions/{session_id}/agents/{agent_id}/messages/{message_id}")
async def message_page(
    request: Request,
    session_id: str,
    agent_id: str,
    message_id: int,
    svc: Svc,
    _: Authorized,
    original: bool = False,
) -> Response:
    """One message; for a redacted one, `original=1` is the explicit ask for what was stored."""
    row = await _message(svc, session_id, agent_id, message_id)
    view = content.message_view(row, original=original)
    return page(request, "message.html", session_id=session_id, agent_id=agent_id, message=view)


@router.get("/ui/sessions/{session_id}/agents/{agent_id}/messages/{message_id}/documents/{ref}")
async def document_download(
    session_id: str,
    agent_id: str,
    message_id: int,
    ref: str,
    svc: Svc,
    _: Authorized,
    original: bool = False,
) -> Response:
    """A document block's bytes as a download (never rendered by the browser)."""
    row = await _message(svc, session_id, agent_id, message_id)
    redaction = content.parse(row["redact_message"])
    shown = content.parse(row["message"]) if redaction is None or original else redaction
    found = content.find_document(shown, ref)
    if found is None:
        raise PageError(404, f"Message {message_id} has no document at {ref!r}.")
    filename, data = found
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            **SECURITY_HEADERS,
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        },
    )


@router.get("/ui/{rest:path}")
async def unknown_page(rest: str, _: Authorized) -> Response:
    """Anything else under /ui: the list for `/ui/`, a friendly 404 page otherwise."""
    if rest == "":
        return RedirectResponse("/ui", status_code=308)
    raise PageError(404, "There is no such page.")
