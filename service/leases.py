"""Session leases: one holder at a time writes a session, fenced by a growing token.

The rule (docs/api.md, "Session leases"): while a session holds a live lease, every write under
it carries `X-Session-Lease: <token>`. Without one it answers `409 session_busy`; with a token
that is not the live lease's (it expired, another holder took it, or it was released) it
answers `409 lease_lost`; either way nothing changes. Reads are never fenced.

The check is the database function `session_write_fence` (migration 0006), evaluated inside the
write's own statement, so it costs no extra round trip and cannot race with an acquire. This
module holds what the HTTP side needs around it: the header, the request and response models,
and the translation of the fence's refusals into contract errors.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import Header
from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.errors import ServiceError

HEADER = "X-Session-Lease"
MAX_TOKEN = 2**63 - 1
MAX_LEASE_TTL_SECONDS = 3600.0
BUSY_STATE, LOST_STATE = "SL409", "SL410"

LeaseToken = Annotated[
    int | None,
    Header(
        alias=HEADER,
        ge=1,
        le=MAX_TOKEN,
        description="The fencing token of the session's lease; required while a live lease "
        "is held (409 session_busy without it, 409 lease_lost when it is not the live one).",
    ),
]


class SessionBusy(ServiceError):
    """A live lease is held by someone else: retry after it expires or is released."""

    status, code = 409, "session_busy"


class LeaseLost(ServiceError):
    """The token presented is not the session's live lease any more."""

    status, code = 409, "lease_lost"


class LeaseRequest(BaseModel):
    """Body of an acquire (POST) or a renewal (PUT)."""

    model_config = ConfigDict(extra="ignore")
    holder: str = Field(
        default="",
        max_length=255,
        description="Who holds the lease (free text, shown to those who find it busy).",
    )
    ttl_seconds: float = Field(
        default=30.0,
        gt=0,
        le=MAX_LEASE_TTL_SECONDS,
        description="How long the lease lasts unless renewed or released.",
    )

    @field_validator("holder")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class LeaseView(BaseModel):
    """A lease as anyone may read it (GET): who holds it and until when."""

    session_id: str
    holder: str
    acquired_at: str
    expires_at: str
    ttl_seconds: float = Field(description="Seconds left when this answer was made.")


class LeaseOut(LeaseView):
    """A lease as its holder gets it; `token` goes into `X-Session-Lease` on every write."""

    token: int
    ttl_seconds: float = Field(
        description="Seconds the lease was granted for (the time left as it was granted); "
        "a repeat under the same Idempotency-Key answers the same."
    )


def retry_after(expires_in: float) -> str:
    """`Retry-After` (whole seconds, at least 1) for a lease that has `expires_in` left."""
    return str(max(1, math.ceil(expires_in)))


def busy(session_id: str, holder: str, expires_at: str, expires_in: float) -> SessionBusy:
    """409 session_busy naming the holder and when its lease ends."""
    error = SessionBusy(
        f"session {session_id!r} is leased by {holder or 'another holder'!r} until {expires_at}; "
        f"retry after it expires, or send its token in {HEADER}",
        [{"holder": holder, "expires_at": expires_at, "expires_in": round(expires_in, 3)}],
    )
    error.headers = {"Retry-After": retry_after(expires_in)}
    return error


def lost(session_id: str) -> LeaseLost:
    return LeaseLost(
        f"the lease on session {session_id!r} is lost: it expired, was released, or another "
        "holder took it; nothing was changed"
    )


def fence_error(exc: BaseException, session_id: str | None = None) -> ServiceError | None:
    """The contract error for a refusal raised by `session_write_fence`, else None."""
    state = getattr(exc, "sqlstate", None)
    if state not in (BUSY_STATE, LOST_STATE):
        return None
    assert isinstance(exc, asyncpg.PostgresError)
    detail: dict[str, Any] = {}
    try:
        detail = orjson.loads(getattr(exc, "detail", None) or "{}")
    except orjson.JSONDecodeError:
        pass
    sid = session_id or str(detail.get("session_id", ""))
    if state == LOST_STATE:
        return lost(sid)
    return busy(
        sid,
        str(detail.get("holder", "")),
        str(detail.get("expires_at")),
        float(detail.get("expires_in", 1)),
    )
