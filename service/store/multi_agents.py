"""Multi-agent state (Graph / Swarm `serialize_state()`)."""

from __future__ import annotations

import asyncpg

from service.errors import already_exists, multi_agent_missing, session_missing
from service.queries import Q
from service.store import missing_or_mismatch
from service.writes import Key


async def create_multi_agent(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    multi_agent_id: str,
    state: bytes,
    lease: int | None = None,
) -> tuple[int, asyncpg.Record]:
    """Insert (201, recorded under `key`); an identical existing state answers 200, else 409."""
    args = (session_id, multi_agent_id, state, key.value, key.fingerprint, lease)
    try:
        row = await conn.fetchrow(Q["create_multi_agent"], *args)
    except asyncpg.ForeignKeyViolationError:
        raise session_missing(session_id) from None
    if row is not None:
        return 201, row
    row = await conn.fetchrow(Q["compare_multi_agent"], session_id, multi_agent_id, state)
    if row is None:  # nothing inserted, nothing to compare: the session is missing or expired
        raise session_missing(session_id)
    if not row["same"]:
        raise already_exists(f"multi-agent state {multi_agent_id!r}")
    return 200, row


async def read_multi_agent(
    conn: asyncpg.Connection, session_id: str, multi_agent_id: str
) -> asyncpg.Record:
    row = await conn.fetchrow(Q["read_multi_agent"], session_id, multi_agent_id)
    if row is None:
        raise multi_agent_missing(session_id, multi_agent_id)
    return row


async def update_multi_agent(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    multi_agent_id: str,
    state: bytes,
    if_match: int | None,
    lease: int | None = None,
) -> tuple[int, asyncpg.Record]:
    args = (session_id, multi_agent_id, state, if_match, key.value, key.fingerprint, lease)
    row = await conn.fetchrow(Q["update_multi_agent"], *args)
    if row is None:
        raise await missing_or_mismatch(
            conn,
            "multi_agent_version",
            (session_id, multi_agent_id),
            if_match,
            multi_agent_missing(session_id, multi_agent_id),
            f"multi-agent state {multi_agent_id!r}",
        )
    return 200, row


async def delete_multi_agent(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    multi_agent_id: str,
    if_match: int | None,
    lease: int | None = None,
) -> tuple[int, None]:
    args = (session_id, multi_agent_id, if_match, key.value, key.fingerprint, lease)
    row = await conn.fetchrow(Q["delete_multi_agent"], *args)
    if row is None:
        raise await missing_or_mismatch(
            conn,
            "multi_agent_version",
            (session_id, multi_agent_id),
            if_match,
            multi_agent_missing(session_id, multi_agent_id),
            f"multi-agent state {multi_agent_id!r}",
        )
    return 204, None
