"""Messages of one agent, numbered by the client (0, 1, 2… per agent)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from service import jsonio
from service.errors import Conflict, agent_missing, already_exists, message_missing
from service.queries import Q
from service.store import missing_or_mismatch
from service.writes import Key


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated message, its documents serialized and its metadata pulled out for columns."""

    message_id: int
    role: str
    content_types: list[str]
    message: bytes
    redact_message: bytes | None


async def create_message(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    agent_id: str,
    new: NewMessage,
    lease: int | None = None,
) -> tuple[int, asyncpg.Record]:
    """Insert (201, recorded under `key`); an identical existing message answers 200, else 409."""
    try:
        row = await conn.fetchrow(
            Q["create_message"],
            session_id,
            agent_id,
            new.message_id,
            new.role,
            new.content_types,
            new.message,
            new.redact_message,
            key.value,
            key.fingerprint,
            lease,
        )
    except asyncpg.ForeignKeyViolationError:
        raise agent_missing(session_id, agent_id) from None
    if row is not None:
        return 201, row
    row = await conn.fetchrow(
        Q["compare_message"],
        session_id,
        agent_id,
        new.message_id,
        new.message,
        new.redact_message,
    )
    if row is None:  # nothing inserted, nothing to compare: the session has expired
        raise agent_missing(session_id, agent_id)
    if not row["same"]:
        raise already_exists(f"message {new.message_id}")
    return 200, row


async def create_messages(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    agent_id: str,
    batch: list[NewMessage],
    lease: int | None = None,
) -> tuple[int, list[asyncpg.Record]]:
    """Insert a batch in one statement (in the caller's transaction); ids already taken must
    hold identical messages. 201 (recorded under `key`) when any was new, else 200."""
    try:
        inserted = await conn.fetch(
            Q["create_messages"],
            session_id,
            agent_id,
            [m.message_id for m in batch],
            [m.role for m in batch],
            # Serialized: a list of lists would be sent as a two-dimensional array.
            [jsonio.dumps(m.content_types) for m in batch],
            [m.message for m in batch],
            [m.redact_message for m in batch],
            key.value,
            key.fingerprint,
            lease,
        )
    except asyncpg.ForeignKeyViolationError:
        raise agent_missing(session_id, agent_id) from None
    rows = list(inserted)
    if len(inserted) < len(batch):
        rows.extend(await repeats(conn, session_id, agent_id, batch, rows))
        rows.sort(key=lambda row: row["message_id"])
        if inserted:  # the recorded answer holds the whole batch, repeats included
            ids = [m.message_id for m in batch]
            await conn.execute(Q["record_batch_outcome"], session_id, agent_id, ids, key.value)
    return (201 if inserted else 200), rows


async def read_message(
    conn: asyncpg.Connection, session_id: str, agent_id: str, message_id: int
) -> asyncpg.Record:
    row = await conn.fetchrow(Q["read_message"], session_id, agent_id, message_id)
    if row is None:
        raise message_missing(session_id, agent_id, message_id)
    return row


async def update_message(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    agent_id: str,
    new: NewMessage,
    if_match: int | None,
    lease: int | None = None,
) -> tuple[int, asyncpg.Record]:
    row = await conn.fetchrow(
        Q["update_message"],
        session_id,
        agent_id,
        new.message_id,
        new.role,
        new.content_types,
        new.message,
        new.redact_message,
        if_match,
        key.value,
        key.fingerprint,
        lease,
    )
    if row is None:
        raise await missing_or_mismatch(
            conn,
            "message_version",
            (session_id, agent_id, new.message_id),
            if_match,
            message_missing(session_id, agent_id, new.message_id),
            f"message {new.message_id}",
        )
    return 200, row


async def delete_message(
    conn: asyncpg.Connection,
    key: Key,
    session_id: str,
    agent_id: str,
    message_id: int,
    if_match: int | None,
    lease: int | None = None,
) -> tuple[int, None]:
    args = (session_id, agent_id, message_id, if_match, key.value, key.fingerprint, lease)
    row = await conn.fetchrow(Q["delete_message"], *args)
    if row is None:
        raise await missing_or_mismatch(
            conn,
            "message_version",
            (session_id, agent_id, message_id),
            if_match,
            message_missing(session_id, agent_id, message_id),
            f"message {message_id}",
        )
    return 204, None


async def list_messages(
    conn: asyncpg.Connection,
    session_id: str,
    agent_id: str,
    after: int | None,
    offset: int,
    limit: int,
    descending: bool,
) -> list[asyncpg.Record]:
    """A keyset page of messages; 404 when the session or agent does not exist."""
    query = Q["list_messages_desc"] if descending else Q["list_messages_asc"]
    rows = await conn.fetch(query, session_id, agent_id, after, offset, limit)
    if not rows and await conn.fetchrow(Q["agent_version"], session_id, agent_id) is None:
        raise agent_missing(session_id, agent_id)
    return rows


async def repeats(
    conn: asyncpg.Connection,
    session_id: str,
    agent_id: str,
    batch: list[NewMessage],
    fresh: list[asyncpg.Record],
) -> list[asyncpg.Record]:
    """The stored messages of the batch's ids that were taken; 409 unless all are identical."""
    inserted = {row["message_id"] for row in fresh}
    taken = [m for m in batch if m.message_id not in inserted]
    existing = await conn.fetch(
        Q["compare_messages"],
        session_id,
        agent_id,
        [m.message_id for m in taken],
        [m.message for m in taken],
        [m.redact_message for m in taken],
    )
    if not existing and not fresh:  # nothing inserted, nothing to compare: the session expired
        raise agent_missing(session_id, agent_id)
    differing = sorted(row["message_id"] for row in existing if not row["same"])
    if differing or len(existing) < len(taken):
        raise Conflict(
            f"messages {differing} already exist with different content; nothing was stored"
        )
    return list(existing)
