"""/api/v1/sessions/{session_id}/agents"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response

from service import jsonio
from service.cache import agent_key
from service.errors import InvalidId
from service.http import JSONRoute, if_match, respond, respond_page
from service.leases import LeaseToken
from service.models import AgentCreate, AgentOut, AgentUpdate, Page, agent_body
from service.routes import AgentId, Cursor, Limit, SessionId, Svc, cached_read, errors, location
from service.store import agents as store
from service.writes import write_of

router = APIRouter(
    prefix="/api/v1/sessions/{session_id}/agents", tags=["agents"], route_class=JSONRoute
)


def _documents(body: AgentUpdate) -> tuple[bytes, bytes, bytes]:
    return (
        jsonio.dumps(body.state),
        jsonio.dumps(body.conversation_manager_state),
        jsonio.dumps(body.internal_state),
    )


@router.post(
    "",
    status_code=201,
    response_model=AgentOut,
    responses=errors(404, 409, 415),
    summary="Create an agent (an identical repeat answers 200)",
)
async def create_agent(
    session_id: SessionId, body: AgentCreate, request: Request, svc: Svc, lease: LeaseToken = None
) -> Response:
    write = await write_of(request, session_id)
    status, row = await svc.db.write(
        write, "agent", store.create_agent, session_id, body.agent_id, *_documents(body), lease
    )
    await svc.cache.drop(agent_key(session_id, body.agent_id))
    return respond(
        agent_body(row),
        status,
        version=row["version"],
        headers=location("sessions", session_id, "agents", body.agent_id),
    )


@router.get(
    "", response_model=Page[AgentOut], responses=errors(404), summary="List a session's agents"
)
async def list_agents(
    session_id: SessionId, request: Request, svc: Svc, limit: Limit = 100, cursor: Cursor = None
) -> Response:
    scope = f"agents|{session_id}"
    after = svc.cursors.read(scope, cursor)[0] if cursor is not None else None
    rows = await svc.db.run(store.list_agents, session_id, after, limit + 1)
    rows, next_cursor = svc.cursors.page(scope, rows, limit, lambda r: [r["agent_id"]])
    return respond_page(request, [agent_body(r) for r in rows], next_cursor)


@router.get(
    "/{agent_id}", response_model=AgentOut, responses=errors(304, 404), summary="Read an agent"
)
async def read_agent(
    session_id: SessionId, agent_id: AgentId, request: Request, svc: Svc
) -> Response:
    async def current() -> tuple[int, int] | None:
        row = await svc.db.run(store.agent_version, session_id, agent_id)
        return None if row is None else (row["version"], row["message_count"])

    async def load() -> tuple[dict, int, int, datetime | None]:
        row = await svc.db.run(store.read_agent, session_id, agent_id)
        return agent_body(row), row["version"], row["message_count"], row["session_expires_at"]

    return await cached_read(
        request, svc.cache, session_id, agent_key(session_id, agent_id), current, load
    )


@router.put(
    "/{agent_id}",
    response_model=AgentOut,
    responses=errors(404, 409, 412, 415),
    summary="Replace an agent's state (never creates)",
)
async def update_agent(
    session_id: SessionId,
    agent_id: AgentId,
    body: AgentUpdate,
    request: Request,
    svc: Svc,
    lease: LeaseToken = None,
) -> Response:
    if body.agent_id not in (None, agent_id):
        raise InvalidId("agent_id in the body does not match the path")
    write = await write_of(request, session_id)
    status, row = await svc.db.write(
        write,
        "agent",
        store.update_agent,
        session_id,
        agent_id,
        *_documents(body),
        if_match(request),
        lease,
    )
    await svc.cache.drop(agent_key(session_id, agent_id))
    return respond(agent_body(row), status, version=row["version"])


@router.delete(
    "/{agent_id}",
    status_code=204,
    response_class=Response,
    responses=errors(404, 409, 412),
    summary="Delete an agent and its messages",
)
async def delete_agent(
    session_id: SessionId, agent_id: AgentId, request: Request, svc: Svc, lease: LeaseToken = None
) -> Response:
    write = await write_of(request, session_id)
    await svc.db.write(
        write, "empty", store.delete_agent, session_id, agent_id, if_match(request), lease
    )
    await svc.cache.drop(agent_key(session_id, agent_id))
    return Response(status_code=204)
