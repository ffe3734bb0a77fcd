"""Session expiry over HTTP: expires_at / ttl_seconds, an expired session gone for every route at
once (before any sweeper), a create over an expired id, the default TTL, and the cache."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from tests.conftest import app_client, make_settings

S = "/api/v1/sessions"
AGENT = {"agent_id": "a", "state": {}, "conversation_manager_state": {}}
MESSAGE = {"message_id": 0, "message": {"role": "user", "content": [{"text": "hi"}]}}


async def expire(database_url: str, session_id: str) -> None:
    """Move a session's expiry into the past, as time passing would (no sweeper runs)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE session_id = $1",
            session_id,
        )
    finally:
        await conn.close()


async def populate(client: httpx.AsyncClient, sid: str, **expiry: object) -> dict:
    r = await client.post(S, json={"session_id": sid, **expiry})
    assert r.status_code == 201, r.text
    assert (await client.post(f"{S}/{sid}/agents", json=AGENT)).status_code == 201
    assert (await client.post(f"{S}/{sid}/agents/a/messages", json=MESSAGE)).status_code == 201
    multi = {"multi_agent_id": "g", "state": {}}
    assert (await client.post(f"{S}/{sid}/multi-agents", json=multi)).status_code == 201
    return r.json()


async def test_ttl_and_expires_at_show_in_responses(client):
    before = datetime.now(UTC)
    body = (await client.post(S, json={"session_id": "t", "ttl_seconds": 3600})).json()
    expires = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(seconds=3590) < expires < before + timedelta(seconds=3610)
    at = "2999-01-02T03:04:05.123456+00:00"
    body = (await client.post(S, json={"session_id": "e", "expires_at": at})).json()
    assert body["expires_at"] == at
    assert (await client.get(f"{S}/e")).json()["expires_at"] == at
    assert (await client.post(S, json={"session_id": "n"})).json()["expires_at"] is None
    listed = {s["session_id"]: s["expires_at"] for s in (await client.get(S)).json()["items"]}
    assert listed["e"] == at and listed["n"] is None


@pytest.mark.parametrize(
    "body,word",
    [
        ({"ttl_seconds": 10, "expires_at": "2999-01-01T00:00:00Z"}, "not both"),
        ({"expires_at": "2000-01-01T00:00:00Z"}, "future"),
        ({"expires_at": "2999-01-01T00:00:00"}, "timezone"),
        ({"ttl_seconds": 0}, "greater than 0"),
        ({"ttl_seconds": -5}, "greater than 0"),
    ],
)
async def test_bad_expiry_is_422(client, body, word):
    r = await client.post(S, json={"session_id": "x", **body})
    assert r.status_code == 422, r.text
    assert word in r.json()["error"]["message"]


async def test_put_sets_clears_or_keeps_the_expiry(client):
    await client.post(S, json={"session_id": "p", "ttl_seconds": 60})
    kept = (await client.put(f"{S}/p", json={"session_type": "AGENT"})).json()
    assert kept["expires_at"] is not None
    longer = (await client.put(f"{S}/p", json={"ttl_seconds": 7200})).json()
    assert longer["expires_at"] > kept["expires_at"]
    assert (await client.put(f"{S}/p", json={"expires_at": None})).json()["expires_at"] is None


async def test_an_expired_session_is_gone_for_every_route(client, database_url):
    await populate(client, "gone", ttl_seconds=3600)
    await populate(client, "kept", ttl_seconds=3600)
    await expire(database_url, "gone")
    a, m, g = f"{S}/gone/agents", f"{S}/gone/agents/a/messages", f"{S}/gone/multi-agents"
    calls = [
        ("GET", f"{S}/gone", None),
        ("PUT", f"{S}/gone", {}),
        ("DELETE", f"{S}/gone", None),
        ("GET", a, None),
        ("POST", a, {**AGENT, "agent_id": "b"}),
        ("POST", a, AGENT),
        ("GET", f"{a}/a", None),
        ("PUT", f"{a}/a", AGENT),
        ("DELETE", f"{a}/a", None),
        ("GET", m, None),
        ("POST", m, {**MESSAGE, "message_id": 1}),
        ("POST", m, MESSAGE),
        ("POST", f"{m}/batch", {"messages": [MESSAGE]}),
        ("POST", f"{m}/batch", {"messages": [{**MESSAGE, "message_id": 5}]}),
        ("GET", f"{m}/0", None),
        ("PUT", f"{m}/0", MESSAGE),
        ("DELETE", f"{m}/0", None),
        ("POST", g, {"multi_agent_id": "g", "state": {}}),
        ("POST", g, {"multi_agent_id": "h", "state": {}}),
        ("GET", f"{g}/g", None),
        ("PUT", f"{g}/g", {"state": {}}),
        ("DELETE", f"{g}/g", None),
        ("GET", f"{S}/gone/export", None),
    ]
    for method, path, body in calls:
        r = await client.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "not_found"
    assert "gone" not in {s["session_id"] for s in (await client.get(S)).json()["items"]}
    assert (await client.get(f"{S}/kept/agents/a/messages/0")).status_code == 200


async def test_a_create_over_an_expired_id_starts_afresh(client, database_url):
    old = await populate(client, "again", ttl_seconds=3600)
    await expire(database_url, "again")
    r = await client.post(S, json={"session_id": "again"})
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"] is None and r.json()["created_at"] > old["created_at"]
    assert (await client.get(f"{S}/again/agents")).json()["items"] == []
    assert (await client.get(f"{S}/again/multi-agents/g")).status_code == 404


async def test_an_identical_repeat_keeps_the_stored_expiry(client):
    first = (await client.post(S, json={"session_id": "r", "ttl_seconds": 60})).json()
    again = await client.post(S, json={"session_id": "r", "ttl_seconds": 9999})
    assert again.status_code == 200 and again.json() == first


async def test_default_ttl_applies_when_a_create_asks_for_none(database_url):
    app = __import__("service.app", fromlist=["create_app"]).create_app(
        make_settings(default_session_ttl_seconds=120), dsn=database_url
    )
    async with app_client(app) as http:
        defaulted = (await http.post(S, json={"session_id": "d"})).json()
        assert defaulted["expires_at"] is not None
        own = (await http.post(S, json={"session_id": "o", "ttl_seconds": 7200})).json()
        assert own["expires_at"] > defaulted["expires_at"]


@pytest.mark.parametrize("mode", ["strict", "bounded"])
async def test_the_cache_never_serves_an_expired_session(database_url, mode):
    from service.app import create_app

    app = create_app(make_settings(cache_mode=mode), dsn=database_url)
    async with app_client(app) as http:
        if mode == "bounded":  # hits need the invalidation listener
            for _ in range(500):
                if app.state.services.cache.listening:
                    break
                await asyncio.sleep(0.01)
        expires_at = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        await populate(http, "c", expires_at=expires_at)
        for _ in range(2):  # fill, then hit
            assert (await http.get(f"{S}/c")).status_code == 200
            assert (await http.get(f"{S}/c/agents/a")).status_code == 200
        assert app.state.services.cache.hits >= 2
        await asyncio.sleep(
            max(0.0, (datetime.fromisoformat(expires_at) - datetime.now(UTC)).total_seconds())
            + 0.05
        )
        assert (await http.get(f"{S}/c")).status_code == 404
        assert (await http.get(f"{S}/c/agents/a")).status_code == 404
