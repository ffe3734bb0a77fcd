"""Guarantees the README makes that a careless change would break quietly: versions are never
reused (ETags, If-Match, If-None-Match and the strict cache across delete and re-create), prune
never deletes a session a write is in, CORS preflights work with API keys, an encoded `/` in an
id is 422, nesting too deep is 422 whatever it holds, and the cache is bounded in bytes."""

from __future__ import annotations

import asyncio
import io

import asyncpg

from service import lifecycle
from service.app import create_app
from service.cache import Entry, ResponseCache
from service.sweeper import sweep
from tests.conftest import app_client, make_settings

S = "/api/v1/sessions"
AGENT = {"agent_id": "a", "state": {"v": 1}, "conversation_manager_state": {}}


async def test_a_recreated_resource_never_answers_an_old_etag(api, sid):
    assert (await api.post(S, json={"session_id": sid})).status_code == 201
    a = f"{S}/{sid}/agents/a"
    old = (await api.post(f"{S}/{sid}/agents", json=AGENT)).headers["etag"]
    assert (await api.delete(a)).status_code == 204
    new = await api.post(f"{S}/{sid}/agents", json={**AGENT, "state": {"v": "new"}})
    assert new.status_code == 201 and new.headers["etag"] != old
    assert (await api.get(a, headers={"If-None-Match": old})).status_code == 200
    stale = await api.put(a, json=AGENT, headers={"If-Match": old})
    assert stale.status_code == 412
    assert (await api.get(a)).json()["state"] == {"v": "new"}
    # The same for a whole session deleted and created again.
    s_old = (await api.get(f"{S}/{sid}")).headers["etag"]
    assert (await api.delete(f"{S}/{sid}")).status_code == 204
    assert (await api.post(S, json={"session_id": sid})).headers["etag"] != s_old


async def test_the_strict_cache_never_serves_a_recreated_agents_old_state(module_database_url, sid):
    """One replica caches an agent and stops hearing invalidations; another deletes it and
    creates it again. The first must answer the new state (it compares versions)."""
    reader_app = create_app(make_settings(), dsn=module_database_url)
    async with (
        app_client(reader_app) as reader,
        app_client(
            create_app(make_settings(cache_ttl_seconds=0), dsn=module_database_url)
        ) as writer,
    ):
        await writer.post(S, json={"session_id": sid})
        await writer.post(f"{S}/{sid}/agents", json=AGENT)
        a = f"{S}/{sid}/agents/a"
        for _ in range(2):
            assert (await reader.get(a)).json()["state"] == {"v": 1}  # cached
        listener = reader_app.state.services.listener
        assert listener is not None
        await listener.stop()  # no invalidation notices from here on
        assert (await writer.delete(a)).status_code == 204
        assert (
            await writer.post(f"{S}/{sid}/agents", json={**AGENT, "state": {"v": 2}})
        ).status_code == 201
        assert (await reader.get(a)).json()["state"] == {"v": 2}


async def test_prune_leaves_a_session_a_write_is_in(module_database_url, api, sid):
    """An append is in flight (its foreign-key check waits on a lock held here) when prune
    runs with a cut-off after everything: prune must skip the session, and the append, once it
    commits, must still be there."""
    assert (await api.post(S, json={"session_id": sid})).status_code == 201
    assert (await api.post(f"{S}/{sid}/agents", json=AGENT)).status_code == 201
    holder = await asyncpg.connect(module_database_url)
    pruner = await asyncpg.connect(module_database_url)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute(
            "SELECT 1 FROM agents WHERE session_id = $1 AND agent_id = 'a' FOR UPDATE", sid
        )
        message = {"message_id": 0, "message": {"role": "user", "content": [{"text": "x"}]}}
        append = asyncio.create_task(api.post(f"{S}/{sid}/agents/a/messages", json=message))
        for _ in range(200):  # until the append waits on the lock held here
            waiting = await pruner.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%INSERT INTO messages%'"
            )
            if waiting:
                break
            await asyncio.sleep(0.02)
        assert waiting, "the append never started"
        out = io.StringIO()
        prune = asyncio.create_task(lifecycle.prune(pruner, 0, False, 1000, out))
        await asyncio.wait({prune}, timeout=2)
        await tx.rollback()  # let the append (and a blocked prune, on old code) go on
        await prune
        r = await append
    finally:
        await holder.close()
        await pruner.close()
    assert sid not in out.getvalue().split()
    assert r.status_code == 201, r.text
    assert (await api.get(f"{S}/{sid}/agents/a/messages/0")).status_code == 200


async def test_cors_preflight_works_with_api_keys_for_configured_origins_only(app_factory):
    app = app_factory(api_keys="k", cors_origins="https://app.example")
    asks = {
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization",
    }
    async with app_client(app) as http:
        ok = await http.options(f"{S}/x", headers={"Origin": "https://app.example", **asks})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        other = await http.options(f"{S}/x", headers={"Origin": "https://evil.example", **asks})
        assert other.status_code == 401
        assert not any(h.startswith("access-control-") for h in other.headers)
        # A real request without a key: 401, readable by the allowed origin's script.
        refused = await http.get(f"{S}/x", headers={"Origin": "https://app.example"})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "https://app.example"
        keyed = await http.get(
            f"{S}/x", headers={"Origin": "https://app.example", "Authorization": "Bearer k"}
        )
        assert keyed.status_code == 404  # through to the route


async def test_an_encoded_slash_in_an_id_is_invalid_id(api):
    for method, path in (
        ("GET", f"{S}/%2F"),
        ("GET", f"{S}/a%2Fb"),
        ("PUT", f"{S}/a%2fb"),
        ("DELETE", f"{S}/s/agents/%2F"),
        ("GET", f"{S}/s/agents/a%5Cb/messages"),
    ):
        r = await api.request(method, path, json={} if method == "PUT" else None)
        assert r.status_code == 422, (method, path, r.status_code)
        assert r.json()["error"]["code"] == "invalid_id"


async def test_nesting_too_deep_is_422_whatever_it_holds(api, sid):
    await api.post(S, json={"session_id": sid})
    for leaf in (b"1", b"12345678901234567890", b'"x"'):
        body = b'{"agent_id": "a", "conversation_manager_state": {}, "state": {"x": '
        body += b"[" * 5000 + leaf + b"]" * 5000 + b"}}"
        r = await api.post(
            f"{S}/{sid}/agents", content=body, headers={"content-type": "application/json"}
        )
        assert r.status_code == 422, (leaf, r.status_code, r.text[:200])
        assert "nested" in r.text or "depth" in r.text


async def test_the_cache_is_bounded_in_bytes():
    cache = ResponseCache(make_settings(cache_max_bytes=1000, cache_max_entry_share=0.5))
    for i in range(5):
        await cache.put("s", f"a\0s\0{i}", Entry(1, 0, b"x" * 300), cache.generation)
        assert cache.bytes <= 1000
    assert cache.figures()["entries"] == 3 and cache.bytes == 900
    assert await cache.get("a\0s\x000") is None  # the oldest went first
    assert await cache.get("a\0s\x004") is not None
    await cache.put("s", "a\0s\0big", Entry(1, 0, b"x" * 501), cache.generation)
    assert await cache.get("a\0s\0big") is None  # above the share: never cached
    assert cache.bytes == 900


async def test_a_large_agent_is_served_but_not_cached(database_url):
    app = create_app(make_settings(cache_max_bytes=10_000), dsn=database_url)
    async with app_client(app) as http:
        await http.post(S, json={"session_id": "s"})
        big = {**AGENT, "state": {"x": "y" * 5_000}}
        await http.post(f"{S}/s/agents", json=big)
        for _ in range(3):
            assert (await http.get(f"{S}/s/agents/a")).json()["state"] == big["state"]
        figures = (await http.get("/health")).json()["cache"]
        assert figures["entries"] == 0 and figures["bytes"] == 0


async def test_the_sweeper_leaves_a_session_whose_expiry_a_write_is_moving(
    module_database_url, api, sid
):
    """A PUT moving a session's expiry is in flight (its idempotency key waits on one held
    here) when the old expiry passes and the sweeper runs: the session is skipped, and the
    PUT, once committed, keeps it alive."""
    assert (await api.post(S, json={"session_id": sid, "ttl_seconds": 1})).status_code == 201
    holder = await asyncpg.connect(module_database_url)
    sweeper = await asyncpg.connect(module_database_url)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute(
            "INSERT INTO idempotency_keys (key, fingerprint, status) VALUES ($1, '\\x00', 204)",
            f"{sid}-extend",
        )
        extend = asyncio.create_task(
            api.put(
                f"{S}/{sid}",
                json={"ttl_seconds": 3600},
                headers={"Idempotency-Key": f"{sid}-extend"},
            )
        )
        for _ in range(200):  # until the PUT holds the session row and waits on the key
            waiting = await sweeper.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%UPDATE sessions%'"
            )
            if waiting:
                break
            await asyncio.sleep(0.02)
        assert waiting, "the PUT never started"
        await asyncio.sleep(1.2)  # the old expiry has passed
        await sweep(sweeper, 100)
        kept = await sweeper.fetchval("SELECT count(*) FROM sessions WHERE session_id = $1", sid)
        assert kept == 1
        await tx.rollback()  # the PUT goes on
        r = await extend
    finally:
        await holder.close()
        await sweeper.close()
    assert r.status_code == 200, r.text
    assert (await api.get(f"{S}/{sid}")).status_code == 200
