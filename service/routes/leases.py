"""/api/v1/sessions/{session_id}/lease: acquire, read, renew and release a session's lease."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from service.errors import InvalidRequest
from service.http import JSONRoute, respond
from service.leases import HEADER, LeaseOut, LeaseRequest, LeaseToken, LeaseView
from service.models import timestamp
from service.routes import SessionId, Svc, errors, location
from service.store import leases as store
from service.writes import write_of

router = APIRouter(
    prefix="/api/v1/sessions/{session_id}/lease", tags=["leases"], route_class=JSONRoute
)


def lease_body(row: Any, token: bool = True, granted: float | None = None) -> dict[str, Any]:
    """A lease as the contract shows it. `granted`: the seconds an acquire or renewal asked for,
    answered as `ttl_seconds` (the time left as the lease was granted), so that a repeat under
    the same Idempotency-Key answers the same body; a read answers the seconds left now."""
    left = row["expires_in"] if granted is None else granted
    body = {
        "session_id": row["session_id"],
        "token": row["token"],
        "holder": row["holder"],
        "acquired_at": timestamp(row["acquired_at"]),
        "expires_at": timestamp(row["expires_at"]),
        "ttl_seconds": round(max(left, 0.0), 3),
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
async def acquire_lease(
    session_id: SessionId, body: LeaseRequest, request: Request, svc: Svc
) -> Response:
    write = await write_of(request, session_id)
    status, row = await svc.db.write(
        write, "lease", store.acquire_lease, session_id, body.holder, body.ttl_seconds
    )
    return respond(
        lease_body(row, granted=body.ttl_seconds),
        status,
        headers=location("sessions", session_id, "lease"),
    )


@router.get(
    "",
    response_model=LeaseView,
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
    session_id: SessionId,
    body: LeaseRequest,
    request: Request,
    svc: Svc,
    lease: LeaseToken = None,
) -> Response:
    token = _token(lease)
    write = await write_of(request, session_id)
    status, row = await svc.db.write(
        write, "lease", store.renew_lease, session_id, token, body.ttl_seconds
    )
    return respond(lease_body(row, granted=body.ttl_seconds), status)


@router.delete(
    "",
    status_code=204,
    response_class=Response,
    responses=errors(404),
    summary=f"Release the lease whose token is in {HEADER} (again, or once lost: no change)",
)
async def release_lease(
    session_id: SessionId, request: Request, svc: Svc, lease: LeaseToken = None
) -> Response:
    token = _token(lease)
    write = await write_of(request, session_id)
    await svc.db.write(write, "empty", store.release_lease, session_id, token)
    return Response(status_code=204)
