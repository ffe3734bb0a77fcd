"""/api/v1/sessions/{session_id}/agents/{agent_id}/turn: a turn's writes in one request."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service import jsonio
from service.cache import agent_key
from service.errors import InvalidId, InvalidRequest
from service.http import JSONRoute, respond
from service.leases import LeaseToken
from service.models import TurnOut, TurnWrite, agent_body, message_body
from service.routes import AgentId, SessionId, Svc, errors
from service.routes.messages import new_message
from service.store import turns as store
from service.writes import write_of

router = APIRouter(
    prefix="/api/v1/sessions/{session_id}/agents/{agent_id}",
    tags=["agents"],
    route_class=JSONRoute,
)


@router.post(
    "/turn",
    status_code=201,
    response_model=TurnOut,
    responses=errors(404, 409, 415),
    summary="Append messages and replace the agent's state in one transaction",
)
async def write_turn(
    session_id: SessionId,
    agent_id: AgentId,
    body: TurnWrite,
    request: Request,
    svc: Svc,
    lease: LeaseToken = None,
) -> Response:
    """What a batch append followed by a PUT of the agent does, all or nothing, under one
    idempotency key: 201 when any message was new, else 200."""
    if not body.messages and body.agent is None:
        raise InvalidRequest("a turn needs messages, an agent, or both")
    ids = [m.message_id for m in body.messages]
    if len(set(ids)) != len(ids):
        raise InvalidRequest("messages: a message_id appears more than once in the turn")
    agent = body.agent
    if agent is not None and agent.agent_id not in (None, agent_id):
        raise InvalidId("agent.agent_id in the body does not match the path")
    batch = [new_message(m, m.message_id) for m in body.messages]
    documents = None
    if agent is not None:
        documents = (
            jsonio.dumps(agent.state),
            jsonio.dumps(agent.conversation_manager_state),
            jsonio.dumps(agent.internal_state),
        )
    write = await write_of(request, session_id)
    status, outcome = await svc.db.write(
        write,
        "turn",
        store.write_turn,
        session_id,
        agent_id,
        batch,
        documents,
        lease,
        atomic=True,  # the messages, the agent and the key commit together or not at all
    )
    await svc.cache.drop(agent_key(session_id, agent_id))
    stored = outcome["agent"]
    return respond(
        {
            "messages": [message_body(row) for row in outcome["messages"] or []],
            "agent": None if stored is None else agent_body(stored),
        },
        status,
    )
