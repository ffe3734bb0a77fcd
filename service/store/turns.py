"""A turn's writes to one agent: its new messages and its state, in one transaction."""

from __future__ import annotations

from typing import Any

import asyncpg

from service import jsonio
from service.errors import agent_missing
from service.queries import Q
from service.store.messages import NewMessage, repeats
from service.writes import Key


async def write_turn(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    agent_id: str,
    batch: list[NewMessage],
    agent: tuple[bytes, bytes, bytes] | None,
    lease: int | None = None,
) -> tuple[int, dict[str, Any]]:
    """Append `batch` (ids already taken must hold identical messages, as in a batch append),
    then replace the agent's state with `agent` (state, conversation manager state, internal
    state) when given; in the caller's transaction. 201 when any message was new, else 200;
    recorded under `key` when anything was written. The answer: {"messages": rows, "agent":
    row or None}, the shape `replay_turn` gives back."""
    rows: list[Any] = []
    inserted = 0
    ids = [m.message_id for m in batch]
    if batch:
        try:
            fresh = await conn.fetch(
                Q["append_turn_messages"],
                session_id,
                agent_id,
                ids,
                [m.role for m in batch],
                [jsonio.dumps(m.content_types) for m in batch],
                [m.message for m in batch],
                [m.redact_message for m in batch],
                lease,
            )
        except asyncpg.ForeignKeyViolationError:
            raise agent_missing(session_id, agent_id) from None
        inserted = len(fresh)
        rows = list(fresh)
        if inserted < len(batch):
            rows.extend(await repeats(conn, session_id, agent_id, batch, fresh))
            rows.sort(key=lambda row: row["message_id"])
    status = 201 if inserted else 200
    agent_row = None
    if agent is not None:  # the state, with the key recorded in the same statement
        agent_row = await conn.fetchrow(
            Q["sync_turn_agent"],
            session_id,
            agent_id,
            *agent,
            lease,
            key.value,
            key.fingerprint,
            status,
            ids,
        )
        if agent_row is None:
            raise agent_missing(session_id, agent_id)
    elif inserted:
        await conn.execute(
            Q["record_turn_outcome"],
            key.value,
            key.fingerprint,
            status,
            session_id,
            agent_id,
            ids,
        )
    return status, {"messages": rows, "agent": agent_row}
