"""Sessions over HTTP: create (retry-safe), read, update, delete, list, versions."""

from __future__ import annotations

import httpx

S = "/api/v1/sessions"


async def create(client: httpx.AsyncClient, sid: str = "s1") -> httpx.Response:
    return await client.post(S, json={"session_id": sid, "session_type": "AGENT"})


async def test_create_answers_201_with_location_etag_and_stored_resource(client):
    r = await create(client)
    assert r.status_code == 201
    body = r.json()
    assert body["session_id"] == "s1" and body["session_type"] == "AGENT"
    assert body["created_at"].endswith("+00:00") and body["created_at"] == body["updated_at"]
    assert r.headers["location"] == "/api/v1/sessions/s1"
    assert r.headers["etag"] == '"1"'
    assert (await client.get(f"{S}/s1")).json() == body


async def test_identical_repeat_answers_200_with_stored_resource(client):
    first = (await create(client)).json()
    again = await client.post(
        S,
        json={
            "session_id": "s1",
            "session_type": "AGENT",
            "created_at": "1999-01-01T00:00:00+00:00",
        },
    )
    assert again.status_code == 200
    assert again.json() == first


async def test_client_timestamps_are_ignored(client):
    r = await client.post(S, json={"session_id": "s2", "created_at": "1999-01-01T00:00:00Z"})
    assert r.status_code == 201
    assert not r.json()["created_at"].startswith("1999")


async def test_unknown_session_type_is_422(client):
    r = await client.post(S, json={"session_id": "s1", "session_type": "GRAPH"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request"
    assert "session_type" in r.json()["error"]["message"]


async def test_read_missing_is_404(client):
    r = await client.get(f"{S}/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_update_bumps_version_keeps_created_at(client):
    created = (await create(client)).json()
    r = await client.put(f"{S}/s1", json={"session_type": "AGENT"})
    assert r.status_code == 200
    assert r.headers["etag"] == '"2"'
    assert r.json()["created_at"] == created["created_at"]
    assert r.json()["updated_at"] >= created["updated_at"]
    assert r.json() == (await client.get(f"{S}/s1")).json()


async def test_update_never_creates(client):
    r = await client.put(f"{S}/ghost", json={"session_type": "AGENT"})
    assert r.status_code == 404
    assert (await client.get(f"{S}/ghost")).status_code == 404


async def test_update_with_mismatched_body_id_is_422(client):
    await create(client)
    r = await client.put(f"{S}/s1", json={"session_id": "other", "session_type": "AGENT"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_id"


async def test_if_match_and_if_none_match(client):
    await create(client)
    assert (await client.put(f"{S}/s1", json={}, headers={"If-Match": '"7"'})).status_code == 412
    assert (
        await client.put(f"{S}/s1", json={}, headers={"If-Match": "garbage"})
    ).status_code == 412
    ok = await client.put(f"{S}/s1", json={}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"'
    not_modified = await client.get(f"{S}/s1", headers={"If-None-Match": '"2"'})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert (await client.get(f"{S}/s1", headers={"If-None-Match": '"1"'})).status_code == 200
    gone = await client.delete(f"{S}/s1", headers={"If-Match": '"1"'})
    assert gone.status_code == 412
    assert (await client.delete(f"{S}/s1", headers={"If-Match": '"2"'})).status_code == 204


async def test_delete_cascades_in_one_transaction(client):
    await create(client)
    await client.post(
        f"{S}/s1/agents", json={"agent_id": "a", "state": {}, "conversation_manager_state": {}}
    )
    await client.post(
        f"{S}/s1/agents/a/messages",
        json={"message_id": 0, "message": {"role": "user", "content": []}},
    )
    await client.post(f"{S}/s1/multi-agents", json={"multi_agent_id": "g", "state": {}})
    r = await client.delete(f"{S}/s1")
    assert r.status_code == 204 and r.content == b""
    for path in ("", "/agents/a", "/agents/a/messages", "/multi-agents/g", "/agents"):
        assert (await client.get(f"{S}/s1{path}")).status_code == 404, path
    assert (await client.delete(f"{S}/s1")).status_code == 404
    # the id is free again, with nothing left under it
    assert (await create(client)).status_code == 201
    assert (await client.get(f"{S}/s1/agents")).json() == {"items": [], "next_cursor": None}


async def test_list_newest_first_with_keyset_pages_and_filters(client):
    for i in range(5):
        await create(client, f"s{i}")
    first = await client.get(S, params={"limit": 2})
    assert first.status_code == 200
    page = first.json()
    assert [s["session_id"] for s in page["items"]] == ["s4", "s3"]
    second = (await client.get(S, params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert [s["session_id"] for s in second["items"]] == ["s2", "s1"]
    third = (await client.get(S, params={"limit": 2, "cursor": second["next_cursor"]})).json()
    assert [s["session_id"] for s in third["items"]] == ["s0"]
    assert third["next_cursor"] is None

    middle = page["items"][1]["created_at"]
    after = (await client.get(S, params={"created_after": middle})).json()["items"]
    assert [s["session_id"] for s in after] == ["s4"]
    before = (await client.get(S, params={"created_before": middle})).json()["items"]
    assert [s["session_id"] for s in before] == ["s2", "s1", "s0"]
    typed = (await client.get(S, params={"session_type": "AGENT"})).json()["items"]
    assert len(typed) == 5


async def test_cursor_from_another_list_or_filter_is_422(client):
    for i in range(3):
        await create(client, f"s{i}")
    cursor = (await client.get(S, params={"limit": 1})).json()["next_cursor"]
    other = await client.get(S, params={"limit": 1, "cursor": cursor, "session_type": "AGENT"})
    assert other.status_code == 422
    assert (await client.get(f"{S}/s0/agents", params={"cursor": cursor})).status_code == 422
    forged = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    assert (await client.get(S, params={"cursor": forged})).status_code == 422


async def test_list_limit_bounds(client):
    assert (await client.get(S, params={"limit": 0})).status_code == 422
    assert (await client.get(S, params={"limit": 1001})).status_code == 422
    assert (await client.get(S, params={"limit": "x"})).status_code == 422
    assert (await client.get(S, params={"limit": 1000})).status_code == 200
    bad = await client.get(S, params={"created_after": "yesterday"})
    assert bad.status_code == 422 and "created_after" in bad.json()["error"]["message"]
