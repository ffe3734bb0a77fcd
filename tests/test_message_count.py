"""`agents.message_count` is kept by the message statements, and cache notices flow only while a
bounded-mode replica listens (migration 0007).

The counter must equal a count of the rows after every kind of message write, including
refused, repeated and partly conflicting ones; notices must reach bounded replicas (message
counts included) and must not be sent when no bounded replica is registered.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import psycopg

from service.listener import CHANNEL
from tests.conftest import app_client, make_settings
from tests.test_resilience import AGENT, S, seed


def _message(n: int, text: str = "x") -> dict:
    return {"message_id": n, "message": {"role": "user", "content": [{"text": text}]}}


def _counts(database_url: str) -> list[tuple[str, int, int]]:
    """(agent_id, stored counter, actual rows) of every agent of session `s`."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT a.agent_id, a.message_count,"
            " (SELECT count(*) FROM messages m"
            "   WHERE m.session_id = a.session_id AND m.agent_id = a.agent_id)"
            " FROM agents a WHERE a.session_id = 's' ORDER BY a.agent_id"
        ).fetchall()
    return [(agent, int(stored), int(actual)) for agent, stored, actual in rows]


async def test_the_counter_follows_every_message_write(app_factory, database_url):
    from service.app import create_app

    app = create_app(make_settings(), dsn=database_url)
    async with app_client(app) as http:
        await seed(http)
        base = f"{S}/s/agents/a/messages"
        assert (await http.post(base, json=_message(0))).status_code == 201
        assert (await http.post(base, json=_message(0))).status_code == 200  # identical repeat
        assert (await http.post(base, json=_message(0, "other"))).status_code == 409
        batch = {"messages": [_message(n) for n in range(1, 6)]}
        assert (await http.post(f"{base}/batch", json=batch)).status_code == 201
        # a batch whose ids are partly taken (identically): only the new ones count
        batch = {"messages": [_message(n) for n in range(4, 9)]}
        assert (await http.post(f"{base}/batch", json=batch)).status_code == 201
        # a batch refused whole (one id taken with other content): nothing counts
        batch = {"messages": [_message(9), _message(1, "other")]}
        assert (await http.post(f"{base}/batch", json=batch)).status_code == 409
        assert (await http.delete(f"{base}/3")).status_code == 204
        assert (await http.delete(f"{base}/3")).status_code == 404
        assert (await http.delete(f"{base}/4", headers={"If-Match": '"7"'})).status_code == 412
        assert _counts(database_url) == [("a", 8, 8)]
        agent = (await http.get(f"{S}/s/agents/a")).json()
        assert agent["message_count"] == 8
        listed = (await http.get(f"{S}/s/agents")).json()["items"]
        assert [a["message_count"] for a in listed] == [8]

        # an export imported under another id keeps the counts of its agents
        exported = await http.get(f"{S}/s/export")
        assert exported.status_code == 200
        lines = exported.content.replace(b'"session_id":"s"', b'"session_id":"s2"')
        imported = await http.post(
            f"{S}/import", content=lines, headers={"Content-Type": "application/x-ndjson"}
        )
        assert imported.status_code == 201, imported.text
        assert (await http.get(f"{S}/s2/agents/a")).json()["message_count"] == 8


async def test_the_migration_backfills_existing_counts(admin_dsn):
    """Messages stored before 0007 are counted by it."""
    from yoyo import get_backend, read_migrations

    from service.migrate import MIGRATIONS_DIR
    from tests.support import create_database, drop_database

    dsn = create_database(admin_dsn)
    try:
        backend = get_backend(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
        migrations = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock():
            before = [m for m in migrations if not m.id.startswith("0007")]
            backend.apply_migrations(backend.to_apply(type(migrations)(before)))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO sessions (session_id, session_type) VALUES ('s', 'AGENT')")
            for agent in ("a", "b"):
                conn.execute(
                    "INSERT INTO agents (session_id, agent_id, state, conversation_manager_state)"
                    " VALUES ('s', %s, '{}', '{}')",
                    (agent,),
                )
            conn.execute(
                "INSERT INTO messages (session_id, agent_id, message_id, role, content_types,"
                " message) SELECT 's', 'a', n, 'user', '{text}', '{}' FROM generate_series(0, 4) n"
            )
        with backend.lock():
            backend.apply_migrations(backend.to_apply(migrations))
        assert _counts(dsn) == [("a", 5, 5), ("b", 0, 0)]
    finally:
        drop_database(admin_dsn, dsn)


async def _notices(database_url: str, action) -> list[str]:
    """The cache notices sent while `action()` runs (and shortly after)."""
    got: list[str] = []
    conn = await asyncpg.connect(database_url)
    try:
        await conn.add_listener(CHANNEL, lambda *args: got.append(args[-1]))
        await action()
        await asyncio.sleep(0.3)
    finally:
        await conn.close()
    return got


async def _listeners(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM cache_listeners"))
    finally:
        await conn.close()


async def test_writes_notify_only_while_a_bounded_replica_listens(service_process, database_url):
    strict = service_process({"DATABASE_URL": database_url})
    async with httpx.AsyncClient(base_url=strict.url) as a:
        await seed(a)

        async def writes(first: int) -> None:
            r = await a.post(f"{S}/s/agents/a/messages", json=_message(first))
            assert r.status_code == 201
            body = {"state": {"n": first}, "conversation_manager_state": {}}
            assert (await a.put(f"{S}/s/agents/a", json=body)).status_code == 200

        assert await _listeners(database_url) == 0
        assert await _notices(database_url, lambda: writes(0)) == []

        bounded = service_process({"DATABASE_URL": database_url, "CACHE_MODE": "bounded"})
        async with httpx.AsyncClient(base_url=bounded.url) as b:
            deadline = time.monotonic() + 10
            while await _listeners(database_url) != 1:
                assert time.monotonic() < deadline, "the bounded replica never registered"
                await asyncio.sleep(0.05)
            notices = await _notices(database_url, lambda: writes(1))
            assert notices and all(n == '["a", "s", "a"]' for n in notices)

            # the bounded replica sees another replica's append in its message count
            assert (await b.get(f"{S}/s/agents/a")).json()["message_count"] == 2  # cached
            assert (await a.post(f"{S}/s/agents/a/messages", json=_message(2))).status_code == 201
            deadline = time.monotonic() + 2
            while (await b.get(f"{S}/s/agents/a")).json()["message_count"] != 3:
                assert time.monotonic() < deadline, "the bounded replica kept a stale count"
                await asyncio.sleep(0.005)

        assert bounded.stop() == 0
        assert await _listeners(database_url) == 0  # unregistered on shutdown
        assert await _notices(database_url, lambda: writes(3)) == []


async def test_a_registration_left_by_a_dead_replica_is_forgotten(app_factory, database_url):
    """A bounded replica killed without unregistering leaves a row: the next listener to
    connect removes it, so writers stop paying for notices nobody reads."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        dead = conn.execute("SELECT max(pid) + 100000 FROM pg_stat_activity").fetchone()[0]
        conn.execute("INSERT INTO cache_listeners (backend_pid) VALUES (%s)", (dead,))
    async with app_client(app_factory()) as http:
        await seed(http)
        deadline = time.monotonic() + 10
        while await _listeners(database_url):
            assert time.monotonic() < deadline, "the dead registration stayed"
            await asyncio.sleep(0.05)
        assert (await http.get(f"{S}/s/agents/{AGENT['agent_id']}")).status_code == 200
