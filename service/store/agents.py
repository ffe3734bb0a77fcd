"""Agents."""

from __future__ import annotations

import asyncpg

from service.errors import agent_missing, already_exists, session_missing
from service.queries import Q
from service.store import missing_or_mismatch
from service.writes import Key


async def create_agent(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    agent_id: str,
    state: bytes,
    conversation_manager_state: bytes,
    internal_state: bytes,
    lease: int | None = None,
) -> tuple[int, asyncpg.Record]:
    """Insert (201, recorded under `key`); an identical existing agent answers 200, else 409.

    `lease`, here and in every write under a session, is the X-Session-Lease token the SQL
    passes to session_write_fence (service.leases)."""
    args = (session_id, agent_id, state, conversation_manager_state, internal_state)
    try:
        row = await conn.fetchrow(Q["create_agent"], *args, key.value, key.fingerprint, lease)
    except asyncpg.ForeignKeyViolationError:
        raise session_missing(session_id) from None
    if row is not None:
        return 201, row
    row = await conn.fetchrow(Q["compare_agent"], *args)
    if row is None:  # nothing inserted, nothing to compare: the session is missing or expired
        raise session_missing(session_id)
    if not row["same"]:
        raise already_exists(f"agent {agent_id!r}")
    return 200, row


async def read_agent(conn: asyncpg.Connection, session_id: str, agent_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(Q["read_agent"], session_id, agent_id)
    if row is None:
        raise agent_missing(session_id, agent_id)
    return row


async def agent_version(
    conn: asyncpg.Connection, session_id: str, agent_id: str
) -> asyncpg.Record | None:
    """(version, message_count) of an agent, or None: cheap validation of a cached copy."""
    return await conn.fetchrow(Q["agent_version"], session_id, agent_id)


async def require_agent(conn: asyncpg.Connection, session_id: str, agent_id: str) -> None:
    if await agent_version(conn, session_id, agent_id) is None:
        raise agent_missing(session_id, agent_id)


async def update_agent(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    agent_id: str,
    state: bytes,
    conversation_manager_state: bytes,
    internal_state: bytes,
    if_match: int | None,
    lease: int | None = None,
) -> tuple[int, asyncpg.Record]:
    row = await conn.fetchrow(
        Q["update_agent"],
        session_id,
        agent_id,
        state,
        conversation_manager_state,
        internal_state,
        if_match,
        key.value,
        key.fingerprint,
        lease,
    )
    if row is None:
        raise await missing_or_mismatch(
            conn,
            "agent_version",
            (session_id, agent_id),
            if_match,
            agent_missing(session_id, agent_id),
            f"agent {agent_id!r}",
        )
    return 200, row


async def delete_agent(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    agent_id: str,
    if_match: int | None,
    lease: int | None = None,
) -> tuple[int, None]:
    args = (session_id, agent_id, if_match, key.value, key.fingerprint, lease)
    if await conn.fetchrow(Q["delete_agent"], *args) is None:
        raise await missing_or_mismatch(
            conn,
            "agent_version",
            (session_id, agent_id),
            if_match,
            agent_missing(session_id, agent_id),
            f"agent {agent_id!r}",
        )
    return 204, None


async def list_agents(
    conn: asyncpg.Connection, session_id: str, after: str | None, limit: int
) -> list[asyncpg.Record]:
    """Up to `limit` agents in id order after `after`; 404 when the session does not exist."""
    rows = await conn.fetch(Q["list_agents"], session_id, after, limit)
    if not rows and await conn.fetchrow(Q["session_version"], session_id) is None:
        raise session_missing(session_id)
    return rows
