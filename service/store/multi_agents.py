"""Multi-agent state (Graph / Swarm `serialize_state()`)."""

from __future__ import annotations

import asyncpg

from service.errors import already_exists, multi_agent_missing, session_missing
from service.queries import Q
from service.store import missing_or_mismatch


async def create_multi_agent(
    conn: asyncpg.Connection,
    session_id: str,
    multi_agent_id: str,
    state: bytes,
    lease: int | None = None,
) -> tuple[asyncpg.Record, bool]:
    """Insert; an identical existing state is returned with `created=False`, else 409."""
    try:
        row = await conn.fetchrow(Q["create_multi_agent"], session_id, multi_agent_id, state, lease)
    except asyncpg.ForeignKeyViolationError:
        raise session_missing(session_id) from None
    if row is not None:
        return row, True
    row = await conn.fetchrow(Q["compare_multi_agent"], session_id, multi_agent_id, state)
    if row is None:  # nothing inserted, nothing to compare: the session is missing or expired
        raise session_missing(session_id)
    if not row["same"]:
        raise already_exists(f"multi-agent state {multi_agent_id!r}")
    return row, False


async def read_multi_agent(
    conn: asyncpg.Connection, session_id: str, multi_agent_id: str
) -> asyncpg.Record:
    row = await conn.fetchrow(Q["read_multi_agent"], session_id, multi_agent_id)
    if row is None:
        raise multi_agent_missing(session_id, multi_agent_id)
    return row


async def update_multi_agent(
    conn: asyncpg.Connection,
    session_id: str,
    multi_agent_id: str,
    state: bytes,
    if_match: int | None,
    lease: int | None = None,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        Q["update_multi_agent"], session_id, multi_agent_id, state, if_match, lease
    )
    if row is None:
        raise await missing_or_mismatch(
            conn,
            "multi_agent_version",
            (session_id, multi_agent_id),
            if_match,
            multi_agent_missing(session_id, multi_agent_id),
            f"multi-agent state {multi_agent_id!r}",
        )
    return row


async def delete_multi_agent(
    conn: asyncpg.Connection,
    session_id: str,
    multi_agent_id: str,
    if_match: int | None,
    lease: int | None = None,
) -> None:
    row = await conn.fetchrow(Q["delete_multi_agent"], session_id, multi_agent_id, if_match, lease)
    if row is None:
        raise await missing_or_mismatch(
            conn,
            "multi_agent_version",
            (session_id, multi_agent_id),
            if_match,
            multi_agent_missing(session_id, multi_agent_id),
            f"multi-agent state {multi_agent_id!r}",
        )
