"""/api/v1/sessions/{session_id}/multi-agents"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service import jsonio
from service.errors import InvalidId
from service.http import JSONRoute, if_match, none_match, not_modified, respond
from service.leases import LeaseToken
from service.models import MultiAgentCreate, MultiAgentOut, MultiAgentUpdate, multi_agent_body
from service.routes import MultiAgentId, SessionId, Svc, errors, location
from service.store import multi_agents as store
from service.writes import write_of

router = APIRouter(
    prefix="/api/v1/sessions/{session_id}/multi-agents",
    tags=["multi-agents"],
    route_class=JSONRoute,
)


@router.post(
    "",
    status_code=201,
    response_model=MultiAgentOut,
    responses=errors(404, 409, 415),
    summary="Create a multi-agent state (an identical repeat answers 200)",
)
async def create_multi_agent(
    session_id: SessionId,
    body: MultiAgentCreate,
    request: Request,
    svc: Svc,
    lease: LeaseToken = None,
) -> Response:
    write = await write_of(request, session_id)
    status, row = await svc.db.write(
        write,
        "multi_agent",
        store.create_multi_agent,
        session_id,
        body.multi_agent_id,
        jsonio.dumps(body.state),
        lease,
    )
    return respond(
        multi_agent_body(row),
        status,
        version=row["version"],
        headers=location("sessions", session_id, "multi-agents", body.multi_agent_id),
    )


@router.get(
    "/{multi_agent_id}",
    response_model=MultiAgentOut,
    responses=errors(304, 404),
    summary="Read a multi-agent state",
)
async def read_multi_agent(
    session_id: SessionId, multi_agent_id: MultiAgentId, request: Request, svc: Svc
) -> Response:
    row = await svc.db.run(store.read_multi_agent, session_id, multi_agent_id)
    if none_match(request, row["version"]):
        return not_modified(row["version"])
    return respond(multi_agent_body(row), version=row["version"])


@router.put(
    "/{multi_agent_id}",
    response_model=MultiAgentOut,
    responses=errors(404, 409, 412, 415),
    summary="Replace a multi-agent state (never creates)",
)
async def update_multi_agent(
    session_id: SessionId,
    multi_agent_id: MultiAgentId,
    body: MultiAgentUpdate,
    request: Request,
    svc: Svc,
    lease: LeaseToken = None,
) -> Response:
    if body.multi_agent_id not in (None, multi_agent_id):
        raise InvalidId("multi_agent_id in the body does not match the path")
    write = await write_of(request, session_id)
    status, row = await svc.db.write(
        write,
        "multi_agent",
        store.update_multi_agent,
        session_id,
        multi_agent_id,
        jsonio.dumps(body.state),
        if_match(request),
        lease,
    )
    return respond(multi_agent_body(row), status, version=row["version"])


@router.delete(
    "/{multi_agent_id}",
    status_code=204,
    response_class=Response,
    responses=errors(404, 409, 412),
    summary="Delete a multi-agent state",
)
async def delete_multi_agent(
    session_id: SessionId,
    multi_agent_id: MultiAgentId,
    request: Request,
    svc: Svc,
    lease: LeaseToken = None,
) -> Response:
    write = await write_of(request, session_id)
    await svc.db.write(
        write,
        "empty",
        store.delete_multi_agent,
        session_id,
        multi_agent_id,
        if_match(request),
        lease,
    )
    return Response(status_code=204)
