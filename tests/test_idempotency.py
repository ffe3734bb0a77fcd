"""Idempotency-Key on writes: a repeat answers the original outcome and applies nothing; a key
reused for another request is 422; concurrent requests under one key apply once; a write whose
outcome cannot be known is a 503 naming the key; the sweeper forgets old keys."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from service.app import create_app
from service.sweeper import sweep
from tests.conftest import app_client, make_settings

S = "/api/v1/sessions"
AGENT = {"agent_id": "a", "state": {}, "conversation_manager_state": {}}


def msg(i: int, text: str = "hi") -> dict:
    return {"message_id": i, "message": {"role": "user", "content": [{"text": text}]}}


async def setup(api: httpx.AsyncClient, sid: str) -> str:
    assert (await api.post(S, json={"session_id": sid})).status_code == 201
    assert (await api.post(f"{S}/{sid}/agents", json=AGENT)).status_code == 201
    return f"{S}/{sid}/agents/a"


def key(name: str) -> dict[str, str]:
    return {"Idempotency-Key": name}


async def test_a_repeat_answers_the_original_outcome_and_applies_nothing(api, sid):
    a = await setup(api, sid)
    first = await api.post(f"{a}/messages", json=msg(0), headers=key(f"{sid}-append"))
    assert first.status_code == 201
    changed = await api.put(f"{a}/messages/0", json=msg(0, "changed"))
    again = await api.post(f"{a}/messages", json=msg(0), headers=key(f"{sid}-append"))
    # The original answer (201, the message as it was then), not a fresh 200 or 409.
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["location"] == first.headers["location"]
    assert (await api.get(f"{a}/messages/0")).json() == changed.json()

    put = [
        await api.put(a, json={**AGENT, "state": {"v": 2}}, headers=key(f"{sid}-put"))
        for _ in range(3)
    ]
    assert {(r.status_code, r.content) for r in put} == {(200, put[0].content)}
    assert (await api.get(a)).headers["etag"] == put[0].headers["etag"]  # applied once

    gone = [await api.delete(f"{a}/messages/0", headers=key(f"{sid}-del")) for _ in range(2)]
    assert [r.status_code for r in gone] == [204, 204]  # not 404 the second time
    assert (await api.delete(f"{a}/messages/0")).status_code == 404  # without the key: 404

    batch = {"messages": [msg(1), msg(2)]}
    one = await api.post(f"{a}/messages/batch", json=batch, headers=key(f"{sid}-batch"))
    two = await api.post(f"{a}/messages/batch", json=batch, headers=key(f"{sid}-batch"))
    assert one.status_code == two.status_code == 201 and one.content == two.content


async def test_a_key_reused_for_another_request_is_422(api, sid):
    a = await setup(api, sid)
    k = key(f"{sid}-k")
    assert (await api.post(f"{a}/messages", json=msg(0), headers=k)).status_code == 201
    for r in (
        await api.post(f"{a}/messages", json=msg(1), headers=k),  # another body
        await api.put(f"{a}/messages/0", json=msg(0), headers=k),  # another method and path
        await api.delete(f"{a}/messages/0", headers=k),
    ):
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_request"
        assert "Idempotency-Key" in r.json()["error"]["message"]
    assert (await api.get(f"{a}/messages/0")).status_code == 200  # nothing applied
    assert (await api.get(f"{a}/messages/1")).status_code == 404


async def test_keys_are_at_most_255_characters(api, sid):
    a = await setup(api, sid)
    r = await api.post(f"{a}/messages", json=msg(0), headers=key("k" * 256))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert (await api.get(f"{a}/messages/0")).status_code == 404
    assert (await api.post(f"{a}/messages", json=msg(0), headers=key("k" * 255))).status_code == 201


async def test_concurrent_requests_under_one_key_apply_once(api, sid):
    a = await setup(api, sid)
    before = (await api.get(a)).json()["version"]
    got = await asyncio.gather(
        *(api.put(a, json={**AGENT, "state": {"n": 1}}, headers=key(f"{sid}-c")) for _ in range(8))
    )
    assert {r.status_code for r in got} == {200}
    assert len({r.content for r in got}) == 1
    after = (await api.get(a)).json()["version"]
    assert after == got[0].json()["version"] != before

    # Creates too: a twin whose insert found the first's message answers the first's 201, not
    # the 200 of an identical repeat.
    created = await asyncio.gather(
        *(api.post(f"{a}/messages", json=msg(0), headers=key(f"{sid}-m")) for _ in range(8))
    )
    assert {r.status_code for r in created} == {201}
    assert len({r.content for r in created}) == 1


async def test_an_unknowable_outcome_is_a_503_naming_the_key(database_url):
    app = create_app(make_settings(request_timeout_seconds=1.0), dsn=database_url)
    async with app_client(app) as api:
        a = await setup(api, "s")
        blocker = await asyncpg.connect(database_url)
        try:
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("SELECT 1 FROM agents WHERE agent_id = 'a' FOR UPDATE")
            r = await api.put(a, json={**AGENT, "state": {"v": 2}})  # blocked past its timeout
            await tx.rollback()
        finally:
            await blocker.close()
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"]
        given = r.headers["idempotency-key"]
        assert given in r.json()["error"]["message"]
        retried = [
            await api.put(a, json={**AGENT, "state": {"v": 2}}, headers=key(given))
            for _ in range(2)
        ]
        assert [x.status_code for x in retried] == [200, 200]
        assert retried[0].content == retried[1].content
        assert (await api.get(a)).headers["etag"] == retried[0].headers["etag"]


async def test_the_sweeper_forgets_keys_past_their_time(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO idempotency_keys (key, fingerprint, status, created_at) VALUES "
            "('old', '\\x00', 204, now() - interval '2 days'), ('new', '\\x00', 204, now())"
        )
        assert await sweep(conn, 1, key_ttl_seconds=86_400) == (0, 1)
        keys = {r[0] for r in await conn.fetch("SELECT key FROM idempotency_keys")}
        assert keys == {"new"}
    finally:
        await conn.close()
