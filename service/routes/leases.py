"""/api/v1/sessions/{session_id}/lease: acquire, read, renew and release a session's lease."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from service.errors import InvalidRequest
from service.http import JSONRoute, respond
from service.leases import HEADER, LeaseOut, LeaseRequest, LeaseToken
from service.models import timestamp
from service.routes import SessionId, Svc, errors, location
from service.store import leases as store

router = APIRouter(
    prefix="/api/v1/sessions/{session_id}/lease", tags=["leases"], route_class=JSONRoute
)


def lease_body(row: Any, token: bool = True) -> dict[str, Any]:
    body = {
        "session_id": row["session_id"],
        "token": row["token"],
        "holder": row["holder"],
        "acquired_at": timestamp(row["acquired_at"]),
        "expires_at": timestamp(row["expires_at"]),
        "ttl_seconds": round(max(row["expires_in"], 0.0), 3),
    }
    if not token:
        del body["token"]
    return body


def _token(token: int | None) -> int:
    if token is None:
        raise InvalidRequest(f"send the lease's token in the {HEADER} header")
    return token


@router.post(
    "",
    status_code=201,
    response_model=LeaseOut,
    responses=errors(404, 409, 415),
    summary="Acquire the session's lease (409 session_busy while another holder has it)",
)
async def acquire_lease(session_id: SessionId, body: LeaseRequest, svc: Svc) -> Response:
    row = await svc.db.run(store.acquire_lease, session_id, body.holder, body.ttl_seconds)
    return respond(lease_body(row), 201, headers=location("sessions", session_id, "lease"))


@router.get(
    "",
    response_model=LeaseOut,
    responses=errors(404),
    summary="Read the session's live lease (without its token); 404 when there is none",
)
async def read_lease(session_id: SessionId, svc: Svc) -> Response:
    row = await svc.db.run(store.read_lease, session_id)
    return respond(lease_body(row, token=False))


@router.put(
    "",
    response_model=LeaseOut,
    responses=errors(404, 409, 415),
    summary=f"Renew the lease whose token is in {HEADER} for ttl_seconds from now",
)
async def renew_lease(
    session_id: SessionId, body: LeaseRequest, svc: Svc, lease: LeaseToken = None
) -> Response:
    row = await svc.db.run(store.renew_lease, session_id, _token(lease), body.ttl_seconds)
    return respond(lease_body(row))


@router.delete(
    "",
    status_code=204,
    response_class=Response,
    responses=errors(404),
    summary=f"Release the lease whose token is in {HEADER} (again, or once lost: no change)",
)
async def release_lease(session_id: SessionId, svc: Svc, lease: LeaseToken = None) -> Response:
    await svc.db.run(store.release_lease, session_id, _token(lease))
    return Response(status_code=204)
