"""A bounded replica's registration waits out writers that decided not to notify.

Writers send cache notices only while `cache_listeners` has a row (migration 0007). A writer
that looked, found none and has not committed yet would otherwise commit a change no notice
announces, after a bounded replica registered and filled its cache: a stale entry with nothing
to clear it. The registration's table lock is what prevents that; this test holds such a writer
open and checks that the registration waits for it, and that a writer after the registration
notifies.
"""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from service.queries import Q


async def _waiting_on_lock(admin: asyncpg.Connection, pid: int) -> bool:
    row = await admin.fetchrow("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid)
    return row is not None and row["wait_event_type"] == "Lock"


async def test_registration_waits_for_a_writer_that_found_no_listener(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await client.post("/api/v1/sessions", json={"session_id": "n", "session_type": "AGENT"})
    created = await client.post(
        "/api/v1/sessions/n/agents",
        json={"agent_id": "a", "state": {}, "conversation_manager_state": {}},
    )
    assert created.status_code == 201

    writer = await asyncpg.connect(database_url)
    listener = await asyncpg.connect(database_url)
    admin = await asyncpg.connect(database_url)
    try:
        # The writer's trigger looks at cache_listeners (empty) and holds its lock until commit.
        write = writer.transaction()
        await write.start()
        await writer.execute(
            "UPDATE agents SET state = '{\"k\": 1}' WHERE session_id = 'n' AND agent_id = 'a'"
        )

        async def register() -> None:
            async with listener.transaction():
                await listener.execute(Q["lock_cache_listeners"])
                await listener.execute(Q["register_cache_listener"])

        registering = asyncio.create_task(register())
        pid = listener.get_server_pid()
        for _ in range(200):
            if await _waiting_on_lock(admin, pid):
                break
            await asyncio.sleep(0.05)
        assert await _waiting_on_lock(admin, pid), "the registration did not wait for the writer"
        assert not registering.done()

        await write.commit()
        await asyncio.wait_for(registering, timeout=30)

        # From now on a writer notifies the registered listener.
        notices: asyncio.Queue[str] = asyncio.Queue()
        await listener.add_listener("session_cache", lambda *args: notices.put_nowait(args[3]))
        await writer.execute(
            "UPDATE agents SET state = '{\"k\": 2}' WHERE session_id = 'n' AND agent_id = 'a'"
        )
        assert await asyncio.wait_for(notices.get(), timeout=10) == '["a", "n", "a"]'
    finally:
        for conn in (writer, listener, admin):
            await conn.close()
