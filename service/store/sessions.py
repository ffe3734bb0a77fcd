"""Sessions."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from service.errors import already_exists, session_missing
from service.queries import Q
from service.store import missing_or_mismatch
from service.writes import Key


async def create_session(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    session_type: str,
    expires_at: datetime | None = None,
    ttl_seconds: float | None = None,
) -> tuple[int, asyncpg.Record]:
    """Insert (201, recorded under `key`); an identical existing session answers 200, else 409.

    An expired session under the id counts as absent: it is deleted and the new one inserted,
    in this transaction. Expiry is not part of the comparison, so a retried create that asks
    for a TTL still answers 200 (with the stored expiry).
    """
    args = (session_id, session_type, expires_at, ttl_seconds, key.value, key.fingerprint)
    row = await conn.fetchrow(Q["create_session"], *args)
    if row is None and await conn.fetchrow(Q["delete_expired_session"], session_id):
        row = await conn.fetchrow(Q["create_session"], *args)
    if row is not None:
        return 201, row
    row = await conn.fetchrow(Q["compare_session"], session_id, session_type)
    if row is None or not row["same"]:
        raise already_exists(f"session {session_id!r}")
    return 200, row


async def read_session(conn: asyncpg.Connection, session_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(Q["read_session"], session_id)
    if row is None:
        raise session_missing(session_id)
    return row


async def require_session(conn: asyncpg.Connection, session_id: str) -> None:
    if await conn.fetchrow(Q["session_version"], session_id) is None:
        raise session_missing(session_id)


async def update_session(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    session_type: str,
    if_match: int | None,
    expiry: tuple[datetime | None, float | None] | None = None,
    lease: int | None = None,
) -> tuple[int, asyncpg.Record]:
    """`expiry` is (expires_at, ttl_seconds) to change it (both None: never expires); None keeps
    it."""
    expires_at, ttl_seconds = expiry or (None, None)
    row = await conn.fetchrow(
        Q["update_session"],
        session_id,
        session_type,
        if_match,
        expiry is not None,
        expires_at,
        ttl_seconds,
        key.value,
        key.fingerprint,
        lease,
    )
    if row is None:
        raise await missing_or_mismatch(
            conn,
            "session_version",
            (session_id,),
            if_match,
            session_missing(session_id),
            f"session {session_id!r}",
        )
    return 200, row


async def delete_session(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    if_match: int | None,
    lease: int | None = None,
) -> tuple[int, None]:
    args = (session_id, if_match, key.value, key.fingerprint, lease)
    row = await conn.fetchrow(Q["delete_session"], *args)
    if row is None:
        raise await missing_or_mismatch(
            conn,
            "session_version",
            (session_id,),
            if_match,
            session_missing(session_id),
            f"session {session_id!r}",
        )
    return 204, None


async def list_sessions(
    conn: asyncpg.Connection,
    created_after: datetime | None,
    created_before: datetime | None,
    session_type: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Up to `limit` sessions, newest first, after the keyset position `after`."""
    at, sid = after if after else (None, None)
    return await conn.fetch(
        Q["list_sessions"], created_after, created_before, session_type, at, sid, limit
    )


async def session_version(conn: asyncpg.Connection, session_id: str) -> int | None:
    """The session's version, or None: cheap validation of a cached copy."""
    return await conn.fetchval(Q["session_version"], session_id)  # type: ignore[no-any-return]
