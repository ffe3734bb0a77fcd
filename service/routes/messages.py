"""/api/v1/sessions/{session_id}/agents/{agent_id}/messages"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from service import jsonio, ndjson
from service.cache import agent_key
from service.errors import InvalidId, InvalidRequest
from service.http import (
    JSONRoute,
    if_match,
    none_match,
    not_modified,
    prefers_ndjson,
    respond,
    respond_page,
)
from service.leases import LeaseToken
from service.message_stream import stream_messages
from service.models import (
    MAX_MESSAGE_ID,
    MessageBatch,
    MessageCreate,
    MessageOut,
    MessageUpdate,
    Page,
    content_types,
    message_body,
    message_items,
)
from service.routes import (
    AgentId,
    Cursor,
    Limit,
    MessageIdPath,
    SessionId,
    Svc,
    errors,
    location,
)
from service.store import messages as store
from service.store.messages import NewMessage
from service.writes import write_of

router = APIRouter(
    prefix="/api/v1/sessions/{session_id}/agents/{agent_id}/messages",
    tags=["messages"],
    route_class=JSONRoute,
)
_STREAM_DOC: dict[str, Any] = {
    "description": "A page (JSON), or with `Accept: application/x-ndjson` every message from the "
    "position on (up to `limit` when given), one per line, as a stream (docs/api.md).",
    "content": {ndjson.MEDIA_TYPE: {"schema": {"type": "string"}}},
}


def new_message(body: MessageUpdate, message_id: int) -> NewMessage:
    """A validated message body as the store takes it: documents serialized, columns pulled out."""
    redact = body.redact_message
    return NewMessage(
        message_id=message_id,
        role=body.message["role"],
        content_types=content_types(body.message),
        message=jsonio.dumps(body.message),
        redact_message=None if redact is None else jsonio.dumps(redact),
    )


@router.post(
    "",
    status_code=201,
    response_model=MessageOut,
    responses=errors(404, 409, 415),
    summary="Append a message (an identical repeat answers 200)",
)
async def create_message(
    session_id: SessionId,
    agent_id: AgentId,
    body: MessageCreate,
    request: Request,
    svc: Svc,
    lease: LeaseToken = None,
) -> Response:
    write = await write_of(request, session_id)
    new = new_message(body, body.message_id)
    status, row = await svc.db.write(
        write, "message", store.create_message, session_id, agent_id, new, lease
    )
    await svc.cache.drop(agent_key(session_id, agent_id))
    return respond(
        message_body(row),
        status,
        version=row["version"],
        headers=location("sessions", session_id, "agents", agent_id, "messages", body.message_id),
    )


@router.post(
    "/batch",
    status_code=201,
    response_model=Page[MessageOut],
    responses=errors(404, 409, 415),
    summary="Append up to 1000 messages, all or nothing",
)
async def create_messages(
    session_id: SessionId,
    agent_id: AgentId,
    body: MessageBatch,
    request: Request,
    svc: Svc,
    lease: LeaseToken = None,
) -> Response:
    ids = [m.message_id for m in body.messages]
    if len(set(ids)) != len(ids):
        raise InvalidRequest("messages: a message_id appears more than once in the batch")
    write = await write_of(request, session_id)
    status, rows = await svc.db.write(
        write,
        "messages",
        store.create_messages,
        session_id,
        agent_id,
        [new_message(m, m.message_id) for m in body.messages],
        lease,
        atomic=True,  # repeats are compared after the insert: a 409 undoes it
    )
    await svc.cache.drop(agent_key(session_id, agent_id))
    return respond({"items": [message_body(r) for r in rows], "next_cursor": None}, status)


@router.get(
    "",
    response_model=Page[MessageOut],
    responses={200: _STREAM_DOC, **errors(404)},
    summary="List an agent's messages in message_id order (a page, or a stream of them all)",
)
async def list_messages(
    session_id: SessionId,
    agent_id: AgentId,
    request: Request,
    svc: Svc,
    limit: Limit = 100,
    cursor: Cursor = None,
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_MESSAGE_ID,
            description="Skip this many messages first (Strands' offset); "
            "a cursor continues where its page ended instead.",
        ),
    ] = 0,
    order: Annotated[Literal["asc", "desc"], Query()] = "asc",
) -> Response:
    scope = f"messages|{session_id}|{agent_id}|{order}"
    after = None
    if cursor is not None:  # the cursor already holds the position the offset led to
        after, offset = svc.cursors.read(scope, cursor)[0], 0
    if prefers_ndjson(request):
        wanted = limit if "limit" in request.query_params else None
        return await stream_messages(
            svc.db,
            svc.settings.export_send_timeout_seconds,
            session_id,
            agent_id,
            after,
            offset,
            wanted,
            order == "desc",
        )
    rows = await svc.db.run(
        store.list_messages, session_id, agent_id, after, offset, limit + 1, order == "desc"
    )
    rows, next_cursor = svc.cursors.page(scope, rows, limit, lambda r: [r["message_id"]])
    return respond_page(request, message_items(rows), next_cursor)


@router.get(
    "/{message_id}", response_model=MessageOut, responses=errors(304, 404), summary="Read a message"
)
async def read_message(
    session_id: SessionId,
    agent_id: AgentId,
    message_id: MessageIdPath,
    request: Request,
    svc: Svc,
) -> Response:
    row = await svc.db.run(store.read_message, session_id, agent_id, message_id)
    if none_match(request, row["version"]):
        return not_modified(row["version"])
    return respond(message_body(row), version=row["version"])


@router.put(
    "/{message_id}",
    response_model=MessageOut,
    responses=errors(404, 409, 412, 415),
    summary="Replace a message and its redaction (never creates)",
)
async def update_message(
    session_id: SessionId,
    agent_id: AgentId,
    message_id: MessageIdPath,
    body: MessageUpdate,
    request: Request,
    svc: Svc,
    lease: LeaseToken = None,
) -> Response:
    if body.message_id not in (None, message_id):
        raise InvalidId("message_id in the body does not match the path")
    write = await write_of(request, session_id)
    status, row = await svc.db.write(
        write,
        "message",
        store.update_message,
        session_id,
        agent_id,
        new_message(body, message_id),
        if_match(request),
        lease,
    )
    return respond(message_body(row), status, version=row["version"])


@router.delete(
    "/{message_id}",
    status_code=204,
    response_class=Response,
    responses=errors(404, 409, 412),
    summary="Delete a message",
)
async def delete_message(
    session_id: SessionId,
    agent_id: AgentId,
    message_id: MessageIdPath,
    request: Request,
    svc: Svc,
    lease: LeaseToken = None,
) -> Response:
    write = await write_of(request, session_id)
    await svc.db.write(
        write,
        "empty",
        store.delete_message,
        session_id,
        agent_id,
        message_id,
        if_match(request),
        lease,
    )
    await svc.cache.drop(agent_key(session_id, agent_id))
    return Response(status_code=204)
