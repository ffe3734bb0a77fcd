"""The write fence is race-free: an acquire and a write under the same session are ordered by
the database, so a write judged by an older lease can never commit after a new holder's
acquire committed. Real PostgreSQL, two connections, the service's own named SQL; each test
holds one side open and waits (polling pg_locks, never a fixed sleep) until the other is
blocked on it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from service.db import init_connection
from service.errors import from_database
from service.leases import LeaseLost, SessionBusy
from service.queries import Q

SID = "fenced"


@pytest.fixture
async def conns(database_url: str) -> AsyncIterator[tuple[asyncpg.Connection, ...]]:
    opened = [await asyncpg.connect(database_url) for _ in range(3)]
    for conn in opened:
        await init_connection(conn)
    admin = opened[2]
    await admin.execute("INSERT INTO sessions (session_id, session_type) VALUES ($1, 'AGENT')", SID)
    await admin.execute(
        "INSERT INTO agents (session_id, agent_id, state, conversation_manager_state) "
        "VALUES ($1, 'a', '{}', '{}')",
        SID,
    )
    yield tuple(opened)
    for conn in opened:
        await conn.close()


async def append(conn: asyncpg.Connection, message_id: int, token: int | None) -> object:
    return await conn.fetchrow(
        Q["create_message"],
        SID,
        "a",
        message_id,
        "user",
        ["text"],
        b'{"role": "user", "content": [{"text": "x"}]}',
        None,
        uuid.uuid4().hex,  # the write's idempotency key and fingerprint
        b"fingerprint",
        token,
    )


async def acquire(conn: asyncpg.Connection, ttl: float, holder: str = "h") -> asyncpg.Record:
    row = await conn.fetchrow(Q["acquire_lease"], SID, holder, ttl, uuid.uuid4().hex, b"f")
    assert row is not None
    return row


async def blocked_on_lease_lock(admin: asyncpg.Connection) -> None:
    """Until some backend waits for the lease's advisory lock."""
    for _ in range(600):
        waiting = await admin.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("nobody waited for the lease lock")


async def expired(admin: asyncpg.Connection) -> None:
    query = "SELECT expires_at > clock_timestamp() FROM session_leases WHERE session_id = $1"
    for _ in range(600):
        if not await admin.fetchval(query, SID):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the lease never expired")


async def messages(admin: asyncpg.Connection) -> list[int]:
    rows = await admin.fetch("SELECT message_id FROM messages ORDER BY message_id")
    return [r["message_id"] for r in rows]


async def test_an_acquire_waits_for_a_write_that_passed_the_fence(conns):
    """Holder A's write passed the fence while A's lease was live, but has not committed yet;
    the lease expires and B acquires. B's acquire cannot commit before A's write has."""
    writer, acquirer, admin = conns
    a = await acquire(admin, ttl=0.5, holder="A")
    tx = writer.transaction()
    await tx.start()
    assert await append(writer, 0, a["token"]) is not None  # fenced and written, uncommitted
    await expired(admin)
    taking = asyncio.create_task(acquire(acquirer, ttl=30, holder="B"))
    await blocked_on_lease_lock(admin)
    assert not taking.done()
    await tx.commit()
    b = await asyncio.wait_for(taking, 30)
    assert b["token"] > a["token"] and b["holder"] == "B"
    # Commit order, by the database's own record: the write's transaction ended before the
    # acquire's began to be visible, so B sees A's message as history, never a late arrival.
    assert await messages(admin) == [0]
    with pytest.raises(asyncpg.PostgresError) as refused:
        await append(writer, 1, a["token"])
    assert isinstance(from_database(refused.value), LeaseLost)


async def test_a_write_that_started_before_an_acquire_committed_sees_it(conns):
    """B's acquire is in flight (the lease lock held, not committed) when a write without a
    token starts: the write's statement snapshot still shows the old, expired lease. The fence
    waits for B and judges by B's lease, so the write is refused with session_busy."""
    writer, acquirer, admin = conns
    await acquire(admin, ttl=0.3, holder="A")
    await expired(admin)
    tx = acquirer.transaction()
    await tx.start()
    b = await acquire(acquirer, ttl=30, holder="B")
    writing = asyncio.create_task(append(writer, 0, None))
    await blocked_on_lease_lock(admin)
    await tx.commit()
    with pytest.raises(asyncpg.PostgresError) as refused:
        await asyncio.wait_for(writing, 30)
    error = from_database(refused.value)
    assert isinstance(error, SessionBusy) and error.status == 409
    assert error.details and error.details[0]["holder"] == "B"
    assert error.headers and int(error.headers["Retry-After"]) >= 1
    assert await messages(admin) == []
    assert await append(writer, 0, b["token"]) is not None


async def test_writes_racing_a_first_acquire_land_before_it_or_not_at_all(database_url, conns):
    """Four connections append without a token while another takes the session's first lease
    (there is no lease row to lock yet). Each append lands before the acquire or is refused
    with session_busy: what the acquire's own transaction saw is all there will ever be."""
    _, acquirer, admin = conns
    writers = [await asyncpg.connect(database_url) for _ in range(4)]
    outcomes: list[str] = []

    async def keep_writing(conn: asyncpg.Connection, first: int) -> None:
        for message_id in range(first, first + 100_000):
            try:
                await append(conn, message_id, None)
            except asyncpg.PostgresError as exc:
                outcomes.append(type(from_database(exc)).__name__)
                return

    try:
        for conn in writers:
            await init_connection(conn)
        tasks = [asyncio.create_task(keep_writing(c, i * 100_000)) for i, c in enumerate(writers)]
        for _ in range(3000):  # until the writers are well under way
            if len(await messages(admin)) >= 40:
                break
            await asyncio.sleep(0.02)
        async with acquirer.transaction():
            await acquire(acquirer, ttl=60, holder="B")
            seen = await messages(acquirer)  # a new snapshot, under the exclusive lease lock
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    finally:
        for conn in writers:
            await conn.close()
    assert outcomes == ["SessionBusy"] * 4
    assert await messages(admin) == seen  # nothing landed after the acquire committed
