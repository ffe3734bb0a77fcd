"""/api/v1/sessions"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from service.cache import session_key
from service.errors import InvalidId
from service.http import JSONRoute, if_match, respond, respond_page
from service.leases import LeaseToken
from service.models import (
    Page,
    SessionCreate,
    SessionOut,
    SessionType,
    SessionUpdate,
    session_body,
)
from service.paging import session_position
from service.routes import Cursor, Limit, SessionId, Svc, cached_read, errors, location
from service.store import sessions as store
from service.writes import write_of

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"], route_class=JSONRoute)


@router.post(
    "",
    status_code=201,
    response_model=SessionOut,
    responses=errors(409, 415),
    summary="Create a session (an identical repeat answers 200)",
)
async def create_session(body: SessionCreate, request: Request, svc: Svc) -> Response:
    ttl = body.ttl_seconds
    if ttl is None and body.expires_at is None:
        ttl = svc.settings.default_session_ttl_seconds or None
    write = await write_of(request, body.session_id)
    status, row = await svc.db.write(
        write,
        "session",
        store.create_session,
        body.session_id,
        body.session_type,
        body.expires_at,
        ttl,
        atomic=True,  # an expired session under the id is deleted first
    )
    return respond(
        session_body(row),
        status,
        version=row["version"],
        headers=location("sessions", body.session_id),
    )


@router.get(
    "", response_model=Page[SessionOut], responses=errors(), summary="List sessions, newest first"
)
async def list_sessions(
    request: Request,
    svc: Svc,
    limit: Limit = 100,
    cursor: Cursor = None,
    created_after: Annotated[datetime | None, Query()] = None,
    created_before: Annotated[datetime | None, Query()] = None,
    session_type: Annotated[SessionType | None, Query()] = None,
) -> Response:
    scope = f"sessions|{created_after}|{created_before}|{session_type}"
    after = None
    if cursor is not None:
        at, sid = svc.cursors.read(scope, cursor)
        after = (datetime.fromisoformat(at), sid)
    rows = await svc.db.run(
        store.list_sessions, created_after, created_before, session_type, after, limit + 1
    )
    rows, next_cursor = svc.cursors.page(scope, rows, limit, session_position)
    return respond_page(request, [session_body(r) for r in rows], next_cursor)


@router.get(
    "/{session_id}", response_model=SessionOut, responses=errors(304, 404), summary="Read a session"
)
async def read_session(session_id: SessionId, request: Request, svc: Svc) -> Response:
    async def current() -> tuple[int, None] | None:
        version = await svc.db.run(store.session_version, session_id)
        return None if version is None else (version, None)

    async def load() -> tuple[dict, int, None, datetime | None]:
        row = await svc.db.run(store.read_session, session_id)
        return session_body(row), row["version"], None, row["expires_at"]

    return await cached_read(request, svc.cache, session_id, session_key(session_id), current, load)


@router.put(
    "/{session_id}",
    response_model=SessionOut,
    responses=errors(404, 409, 412, 415),
    summary="Update a session (never creates)",
)
async def update_session(
    session_id: SessionId,
    body: SessionUpdate,
    request: Request,
    svc: Svc,
    lease: LeaseToken = None,
) -> Response:
    if body.session_id not in (None, session_id):
        raise InvalidId("session_id in the body does not match the path")
    write = await write_of(request, session_id)
    status, row = await svc.db.write(
        write,
        "session",
        store.update_session,
        session_id,
        body.session_type,
        if_match(request),
        body.expiry(),
        lease,
    )
    await svc.cache.drop_session(session_id)  # its agents' entries carry its expiry too
    return respond(session_body(row), status, version=row["version"])


@router.delete(
    "/{session_id}",
    status_code=204,
    response_class=Response,
    responses=errors(404, 409, 412),
    summary="Delete a session with its agents, messages and multi-agent states",
)
async def delete_session(
    session_id: SessionId, request: Request, svc: Svc, lease: LeaseToken = None
) -> Response:
    write = await write_of(request, session_id)
    await svc.db.write(write, "empty", store.delete_session, session_id, if_match(request), lease)
    await svc.cache.drop_session(session_id)
    return Response(status_code=204)
