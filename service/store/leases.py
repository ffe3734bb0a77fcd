"""Session leases (sql/leases.sql): acquire, read, renew, release, and the fence statement.

Acquire, renew and release are writes: they take the request's idempotency `Key` and record it
with their answer in the same statement (service.db.Database.write)."""

from __future__ import annotations

import asyncpg

from service.errors import NotFound, ServiceUnavailable
from service.leases import busy, lost
from service.models import timestamp
from service.queries import Q
from service.store.sessions import require_session
from service.writes import Key


async def acquire_lease(
    conn: asyncpg.Connection, key: Key, session_id: str, holder: str, ttl_seconds: float
) -> tuple[int, asyncpg.Record]:
    """The new lease; 409 session_busy while another is live, 404 without the session.

    The busy answer reads the live lease in a second statement (a fresh snapshot): when it ended
    in between, the acquire is simply tried again.
    """
    for _ in range(3):
        args = (session_id, holder, ttl_seconds, key.value, key.fingerprint)
        row = await conn.fetchrow(Q["acquire_lease"], *args)
        if row is not None:
            return 201, row
        current = await conn.fetchrow(Q["read_lease"], session_id)
        if current is None:
            await require_session(conn, session_id)
        elif current["expires_in"] > 0:
            raise busy(
                session_id,
                current["holder"],
                timestamp(current["expires_at"]),
                current["expires_in"],
            )
    raise ServiceUnavailable("the lease changed hands repeatedly while acquiring; retry shortly")


async def read_lease(conn: asyncpg.Connection, session_id: str) -> asyncpg.Record:
    """The live lease; 404 when the session is missing or holds no live lease."""
    row = await conn.fetchrow(Q["read_lease"], session_id)
    if row is None or row["expires_in"] <= 0:
        await require_session(conn, session_id)
        raise NotFound(f"session {session_id!r} holds no live lease")
    return row


async def renew_lease(
    conn: asyncpg.Connection, key: Key, session_id: str, token: int, ttl_seconds: float
) -> tuple[int, asyncpg.Record]:
    """Extend the live lease `token`; 409 lease_lost when it is not live, 404 without session."""
    args = (session_id, token, ttl_seconds, key.value, key.fingerprint)
    row = await conn.fetchrow(Q["renew_lease"], *args)
    if row is None:
        await require_session(conn, session_id)
        raise lost(session_id)
    return 200, row


async def release_lease(
    conn: asyncpg.Connection, key: Key, session_id: str, token: int
) -> tuple[int, None]:
    """End the lease `token` if it still holds; again, or after it was lost, changes nothing."""
    args = (session_id, token, key.value, key.fingerprint)
    if await conn.fetchrow(Q["release_lease"], *args) is None:
        await require_session(conn, session_id)
    return 204, None


async def fence(conn: asyncpg.Connection, session_id: str, token: int | None) -> None:
    """The write fence as a statement of its own, for writes of several statements: call it
    first in the write's transaction. Raises the asyncpg error `errors.from_database` turns into
    409 session_busy / lease_lost."""
    await conn.fetchval(Q["session_write_fence"], session_id, token)
