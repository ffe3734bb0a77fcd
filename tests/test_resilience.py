"""Stalls, saturation, plan invalidation, listener loss, graceful shutdown, and the cache across
two real replicas."""

from __future__ import annotations

import asyncio
import signal
import statistics
import time

import httpx
import psycopg

from service.listener import APPLICATION_NAME
from tests.conftest import app_client

S = "/api/v1/sessions"
AGENT = {"agent_id": "a", "state": {"n": 0}, "conversation_manager_state": {}}


async def seed(http: httpx.AsyncClient) -> None:
    assert (await http.post(S, json={"session_id": "s"})).status_code in (200, 201)
    assert (await http.post(f"{S}/s/agents", json=AGENT)).status_code in (200, 201)


async def test_a_stalled_row_answers_503_with_retry_after(app_factory, database_url):
    async with app_client(app_factory(db_statement_timeout_seconds=0.5)) as http:
        await seed(http)
        with psycopg.connect(database_url) as blocker:
            blocker.execute("SELECT 1 FROM agents WHERE agent_id = 'a' FOR UPDATE")
            started = time.monotonic()
            r = await http.put(
                f"{S}/s/agents/a", json={"state": {"n": 1}, "conversation_manager_state": {}}
            )
            assert r.status_code == 503 and r.headers["retry-after"]
            assert r.json()["error"]["code"] == "service_unavailable"
            assert time.monotonic() - started < 5
        ok = await http.put(
            f"{S}/s/agents/a", json={"state": {"n": 2}, "conversation_manager_state": {}}
        )
        assert ok.status_code == 200 and ok.json()["state"] == {"n": 2}


async def test_a_saturated_pool_answers_503_then_recovers(app_factory, database_url):
    settings = {
        "db_pool_min_size": 1,
        "db_pool_max_size": 1,
        "db_acquire_timeout_seconds": 0.3,
        "db_statement_timeout_seconds": 5,
        "db_retry_attempts": 2,
    }
    async with app_client(app_factory(**settings)) as http:
        await seed(http)
        with psycopg.connect(database_url) as blocker:
            blocker.execute("SELECT 1 FROM agents WHERE agent_id = 'a' FOR UPDATE")
            held = asyncio.create_task(
                http.put(
                    f"{S}/s/agents/a", json={"state": {"n": 1}, "conversation_manager_state": {}}
                )
            )
            await asyncio.sleep(0.3)  # the only connection now waits on the row lock
            r = await http.get(f"{S}/s")
            assert r.status_code == 503 and r.headers["retry-after"]
        assert (await held).status_code == 200
        assert (await http.get(f"{S}/s")).status_code == 200


async def test_a_plan_invalidated_by_a_migration_is_retried(app_factory, database_url):
    app = app_factory(cache_ttl_seconds=0, db_pool_min_size=1, db_pool_max_size=1)
    async with app_client(app) as http:
        await seed(http)
        for n in range(3):  # the statements are now prepared on the pooled connection
            assert (await http.get(f"{S}/s")).status_code == 200
            assert (await http.post(S, json={"session_id": f"warm{n}"})).status_code == 201
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE sessions ALTER COLUMN session_type TYPE varchar(64)")
        before = app.state.services.db.retries
        # Inside a transaction the stale plan fails the transaction: it is retried whole.
        assert (await http.post(S, json={"session_id": "after"})).status_code == 201
        assert app.state.services.db.retries > before
        # Outside one, asyncpg re-prepares the statement by itself.
        r = await http.get(f"{S}/s")
        assert r.status_code == 200 and r.json()["session_type"] == "AGENT"
        assert (await http.put(f"{S}/s", json={})).status_code == 200


async def test_data_errors_are_not_retried(app_factory):
    app = app_factory()
    async with app_client(app) as http:
        await seed(http)
        db = app.state.services.db
        before = db.retries
        r = await http.post(
            f"{S}/s/agents", json={**AGENT, "agent_id": "b", "state": {"t": "x\u0000"}}
        )
        assert r.status_code == 201  # \u0000 is fine in json
        assert db.retries == before


async def test_listener_loss_clears_the_cache_and_it_comes_back(app_factory, database_url):
    app = app_factory(cache_mode="bounded")
    async with app_client(app) as http:
        svc = app.state.services
        await seed(http)
        for _ in range(30):
            if svc.cache.listening:
                break
            await asyncio.sleep(0.1)
        assert (await http.get(f"{S}/s/agents/a")).json()["state"] == {"n": 0}
        assert svc.cache.figures()["entries"] == 1
        reconnects = svc.listener.reconnects
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (APPLICATION_NAME,),
            )
        for _ in range(50):
            if svc.listener.reconnects > reconnects and svc.cache.listening:
                break
            await asyncio.sleep(0.1)
        assert svc.listener.reconnects > reconnects and svc.cache.listening
        assert svc.cache.figures()["entries"] == 0  # cleared: notices may have been missed
        # and invalidation works again on the new connection
        assert (await http.get(f"{S}/s/agents/a")).status_code == 200
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE agents SET state = '{\"n\": 5}', version = version + 1")
        for _ in range(50):
            if (await http.get(f"{S}/s/agents/a")).json()["state"] == {"n": 5}:
                break
            await asyncio.sleep(0.02)
        assert (await http.get(f"{S}/s/agents/a")).json()["state"] == {"n": 5}


async def test_strict_replicas_never_serve_a_stale_value(service_process, database_url):
    one = service_process({"DATABASE_URL": database_url})
    two = service_process({"DATABASE_URL": database_url})
    async with httpx.AsyncClient(base_url=one.url) as a, httpx.AsyncClient(base_url=two.url) as b:
        await seed(a)
        for n in range(1, 41):
            assert (await b.get(f"{S}/s/agents/a")).status_code == 200  # cached on two
            body = {"state": {"n": n}, "conversation_manager_state": {}}
            assert (await a.put(f"{S}/s/agents/a", json=body)).status_code == 200
            seen = (await b.get(f"{S}/s/agents/a")).json()
            assert seen["state"] == {"n": n}, f"replica two served a stale agent at write {n}"
            await a.post(
                f"{S}/s/agents/a/messages",
                json={"message_id": n, "message": {"role": "user", "content": []}},
            )
            assert (await b.get(f"{S}/s/agents/a")).json()["message_count"] == n
        hits = (await b.get("/health")).json()["cache"]
        assert hits["hits"] > 0  # the cache was in use, not bypassed


async def test_bounded_replicas_catch_up_within_milliseconds(service_process, database_url):
    env = {"DATABASE_URL": database_url, "CACHE_MODE": "bounded"}
    one, two = service_process(env), service_process(env)
    lags = []
    async with httpx.AsyncClient(base_url=one.url) as a, httpx.AsyncClient(base_url=two.url) as b:
        await seed(a)
        for n in range(1, 31):
            assert (await b.get(f"{S}/s/agents/a")).status_code == 200
            await a.put(
                f"{S}/s/agents/a", json={"state": {"n": n}, "conversation_manager_state": {}}
            )
            written = time.perf_counter()
            while (await b.get(f"{S}/s/agents/a")).json()["state"] != {"n": n}:
                assert time.perf_counter() - written < 2, "replica two never caught up"
                await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - written) * 1000)
    lags.sort()
    print(
        f"\nbounded-mode replica lag over {len(lags)} writes: median "
        f"{statistics.median(lags):.1f} ms, p90 {lags[int(len(lags) * 0.9)]:.1f} ms, "
        f"max {lags[-1]:.1f} ms"
    )


async def test_sigterm_finishes_in_flight_requests_and_loses_nothing(service_process, database_url):
    proc = service_process({"DATABASE_URL": database_url, "SHUTDOWN_GRACE_SECONDS": "10"})
    acknowledged: list[int] = []
    async with httpx.AsyncClient(
        base_url=proc.url, timeout=30, limits=httpx.Limits(max_connections=16)
    ) as http:
        await seed(http)

        async def append(batch: int) -> None:
            body = {
                "messages": [
                    {
                        "message_id": batch * 50 + i,
                        "message": {"role": "user", "content": [{"text": "x" * 2000}]},
                    }
                    for i in range(50)
                ]
            }
            try:
                r = await http.post(f"{S}/s/agents/a/messages/batch", json=body)
            except httpx.TransportError:
                return  # refused after the signal: never acknowledged
            if r.status_code == 201:
                acknowledged.append(batch)
            else:
                assert r.status_code == 503, r.text

        tasks = [asyncio.create_task(append(i)) for i in range(40)]
        await asyncio.sleep(0.15)
        proc.signal(signal.SIGTERM)
        await asyncio.gather(*tasks)
    assert proc.proc.wait(30) == 0
    assert acknowledged, "nothing was in flight"
    with psycopg.connect(database_url) as conn:
        stored = {r[0] for r in conn.execute("SELECT message_id FROM messages").fetchall()}
    for batch in acknowledged:
        assert set(range(batch * 50, batch * 50 + 50)) <= stored
    assert len(stored) % 50 == 0  # batches are all or nothing
    print(
        f"\ngraceful shutdown: {len(acknowledged)} of 40 batches acknowledged, "
        f"{len(stored) // 50} stored"
    )


async def test_a_retry_whose_connection_dies_before_it_looks_back_tries_again(
    app_factory, database_url
):
    """A write's connection is lost mid-statement; the retry's connection is then lost too, while
    it settles the first attempt (as when the database shuts down). Both are lost connections:
    the write is retried once more and answered, applied once, never a 500."""
    app = app_factory(db_retry_attempts=4)
    async with app_client(app) as http:
        await seed(http)
        db = app.state.services.db
        real_apply, real_settle = db._apply_once, db._settle
        faults = {"apply": 1, "settle": 1}

        def terminate(pid: int) -> None:
            with psycopg.connect(database_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))

        async def apply_once(attempt, conn, write, kind, atomic, work, args):
            if faults["apply"]:  # the write's own connection goes as its statement starts
                faults["apply"] -= 1

                async def lost_work(conn, *work_args):
                    await asyncio.to_thread(terminate, conn.get_server_pid())
                    return await work(conn, *work_args)

                return await real_apply(attempt, conn, write, kind, atomic, lost_work, args)
            return await real_apply(attempt, conn, write, kind, atomic, work, args)

        async def settle(conn, pid):
            if faults["settle"]:
                faults["settle"] -= 1
                await asyncio.to_thread(terminate, conn.get_server_pid())
                await asyncio.sleep(0.2)  # asyncpg sees the connection go
            return await real_settle(conn, pid)

        db._apply_once, db._settle = apply_once, settle
        body = {"message_id": 0, "message": {"role": "user", "content": [{"text": "hi"}]}}
        r = await http.post(f"{S}/s/agents/a/messages", json=body)
        assert faults == {"apply": 0, "settle": 0}
        assert r.status_code in (200, 201), r.text
        listed = (await http.get(f"{S}/s/agents/a/messages")).json()["items"]
        assert [m["message_id"] for m in listed] == [0]
