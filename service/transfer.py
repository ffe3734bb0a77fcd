"""Export and import of whole sessions (the records of `service.ndjson`).

An export streams from server-side cursors inside one read-only REPEATABLE READ transaction, so
its records are one consistent snapshot and memory stays at one chunk whatever the session's
size; stored documents go out as the `orjson.Fragment`s the pool's codec reads, byte for byte.
An import restores a validated stream in one transaction, all or nothing, keeping timestamps;
versions are new (a version is never reused, so one from elsewhere is not taken over).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import asyncpg

from service import jsonio, ndjson
from service.db import Database
from service.errors import (
    TRANSIENT,
    Conflict,
    InvalidRequest,
    ServiceUnavailable,
    from_database,
    session_missing,
)
from service.models import content_types, session_body, timestamp
from service.queries import Q
from service.store.leases import fence
from service.writes import Key

CHUNK_BYTES = 64 * 1024  # a response chunk: big enough to be cheap, small enough to stream
PREFETCH = 500  # rows per cursor round trip
# An export holds its snapshot while the client reads; a slow reader may pause this long.
IDLE_TIMEOUT = "300s"
BATCH = 1000  # rows per INSERT of an import
T = TypeVar("T")


@asynccontextmanager
async def _connection(db: Database) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for a whole export (not retried: bytes may already be out), under
    the exports' own semaphore (EXPORT_MAX_CONCURRENT): waiting for it is bounded like waiting
    for the pool, then 503."""
    if not db.accepting or db.pool is None:
        raise ServiceUnavailable("the database is not connected yet; retry shortly")
    try:
        async with asyncio.timeout(db.settings.db_acquire_timeout_seconds):
            await db.exports.acquire()
    except TimeoutError:
        raise ServiceUnavailable(
            f"{db.settings.export_max_concurrent} exports are running already; retry shortly"
        ) from None
    try:
        try:
            conn = await db.pool.acquire(timeout=db.settings.db_acquire_timeout_seconds)
        except asyncpg.PostgresError as exc:
            raise from_database(exc) from exc
        except TRANSIENT as exc:
            raise from_database(exc) from exc
        try:
            yield cast(asyncpg.Connection, conn)
        finally:
            await db.pool.release(conn)
    finally:
        db.exports.release()


def _stamps(row: Any) -> dict[str, Any]:
    return {
        "version": row["version"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
    }


def _agent(row: Any) -> bytes:
    return ndjson.line(
        {
            "type": "agent",
            "agent_id": row["agent_id"],
            "state": row["state"],
            "conversation_manager_state": row["conversation_manager_state"],
            "_internal_state": row["internal_state"],
            **_stamps(row),
        }
    )


def _message(row: Any) -> bytes:
    return ndjson.line(
        {
            "type": "message",
            "agent_id": row["agent_id"],
            "message_id": row["message_id"],
            "message": row["message"],
            "redact_message": row["redact_message"],
            **_stamps(row),
        }
    )


def _multi_agent(row: Any) -> bytes:
    return ndjson.line(
        {
            "type": "multi_agent",
            "multi_agent_id": row["multi_agent_id"],
            "state": row["state"],
            **_stamps(row),
        }
    )


_PARTS = (
    ("agents", "export_agents", _agent),
    ("messages", "export_messages", _message),
    ("multi_agents", "export_multi_agents", _multi_agent),
)


async def export_session(db: Database, session_id: str) -> AsyncGenerator[bytes, None]:
    """The export in chunks. The first is the session line alone, so a missing (or expired)
    session raises 404 before anything is sent; a failure later ends the stream without its
    `end` record (and without HTTP's last chunk), so a reader can tell it is incomplete."""
    async with _connection(db) as conn:
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.fetchval(Q["export_idle_timeout"], IDLE_TIMEOUT)
                row = await conn.fetchrow(Q["read_session"], session_id)
                if row is None:
                    raise session_missing(session_id)
                yield ndjson.line({"type": "session", **session_body(row)})
                counts = dict.fromkeys((part for part, _, _ in _PARTS), 0)
                chunk = bytearray()
                for part, query, build in _PARTS:
                    async for record in conn.cursor(Q[query], session_id, prefetch=PREFETCH):
                        chunk += build(record)
                        counts[part] += 1
                        if len(chunk) >= CHUNK_BYTES:
                            yield bytes(chunk)
                            chunk.clear()
                chunk += ndjson.line({"type": "end", **counts})
                yield bytes(chunk)
        except asyncpg.PostgresError as exc:
            raise from_database(exc) from exc
        except TRANSIENT as exc:
            raise from_database(exc) from exc


def _batches(items: Sequence[T]) -> list[Sequence[T]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


async def restore(
    conn: asyncpg.Connection,
    key: Key,
    bundle: ndjson.Bundle,
    replace: bool,
    lease: int | None = None,
) -> tuple[int, Any]:
    """Insert a parsed export (in the caller's transaction); 409 when the session exists
    (unless `replace`), which an expired one does not. (201, the session row), recorded under
    `key`. Replacing a leased session takes its lease's token (`lease`), as every write under
    it does."""
    s = bundle.session
    sid = s.session_id
    if replace:
        await fence(conn, sid, lease)
    await conn.fetchrow(Q["import_delete_session" if replace else "delete_expired_session"], sid)
    try:
        row = await conn.fetchrow(
            Q["import_session"],
            sid,
            s.session_type,
            s.created_at,
            s.updated_at,
            s.expires_at,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"session {sid!r} already exists; import with replace=true to replace it"
        ) from None
    assert row is not None
    if row["expired"]:
        raise InvalidRequest(
            f"session {sid!r} expired at {timestamp(row['expires_at'])}; nothing was imported"
        )
    for agents in _batches(bundle.agents):
        await conn.execute(
            Q["import_agents"],
            sid,
            [a.agent_id for a in agents],
            [jsonio.dumps(a.state) for a in agents],
            [jsonio.dumps(a.conversation_manager_state) for a in agents],
            [jsonio.dumps(a.internal_state) for a in agents],
            [a.created_at for a in agents],
            [a.updated_at for a in agents],
        )
    for messages in _batches(bundle.messages):
        await conn.execute(
            Q["import_messages"],
            sid,
            [m.agent_id for m in messages],
            [m.message_id for m in messages],
            [m.message["role"] for m in messages],
            [jsonio.dumps(content_types(m.message)) for m in messages],
            [jsonio.dumps(m.message) for m in messages],
            [
                None if m.redact_message is None else jsonio.dumps(m.redact_message)
                for m in messages
            ],
            [m.created_at for m in messages],
            [m.updated_at for m in messages],
        )
    for states in _batches(bundle.multi_agents):
        await conn.execute(
            Q["import_multi_agents"],
            sid,
            [x.multi_agent_id for x in states],
            [jsonio.dumps(x.state) for x in states],
            [x.created_at for x in states],
            [x.updated_at for x in states],
        )
    await conn.execute(Q["record_session_outcome"], key.value, key.fingerprint, 201, sid)
    return 201, row
