"""POST .../agents/{agent_id}/turn: a turn's messages and agent state in one transaction, under
one idempotency key and the session's lease fence, all or nothing."""

from __future__ import annotations

import httpx

S = "/api/v1/sessions"
AGENT = {"agent_id": "a", "state": {}, "conversation_manager_state": {"__name__": "W"}}


def msg(i: int, text: str = "hi", role: str = "user") -> dict:
    return {"message_id": i, "message": {"role": role, "content": [{"text": text}]}}


def state(n: int) -> dict:
    return {
        "state": {"turn": n, "\u0000key": [2**60, 1.5]},
        "conversation_manager_state": {"__name__": "W", "removed_message_count": 0},
        "_internal_state": {"interrupt_state": {"n": n}},
    }


async def setup(api: httpx.AsyncClient, sid: str) -> str:
    assert (await api.post(S, json={"session_id": sid})).status_code == 201
    assert (await api.post(f"{S}/{sid}/agents", json=AGENT)).status_code == 201
    return f"{S}/{sid}/agents/a"


async def stored(api: httpx.AsyncClient, a: str) -> tuple[list[dict], dict]:
    page = await api.get(f"{a}/messages", params={"limit": 1000})
    agent = await api.get(a)
    return page.json()["items"], agent.json()


async def test_a_turn_appends_and_replaces_the_state_answering_what_a_get_reads(api, sid):
    a = await setup(api, sid)
    r = await api.post(
        f"{a}/turn", json={"messages": [msg(0), msg(1, "yes", "assistant")], "agent": state(1)}
    )
    assert r.status_code == 201, r.text
    messages, agent = await stored(api, a)
    assert r.json() == {"messages": messages, "agent": agent}
    assert [m["message_id"] for m in messages] == [0, 1]
    assert agent["state"] == state(1)["state"] and agent["message_count"] == 2
    assert agent["_internal_state"] == {"interrupt_state": {"n": 1}}

    # Only the agent: 200, as a PUT; only messages: 201, as a batch.
    only_agent = await api.post(f"{a}/turn", json={"agent": {**state(2), "agent_id": "a"}})
    assert only_agent.status_code == 200
    assert only_agent.json()["messages"] == []
    assert only_agent.json()["agent"] == (await api.get(a)).json()
    only_messages = await api.post(f"{a}/turn", json={"messages": [msg(2)]})
    assert only_messages.status_code == 201 and only_messages.json()["agent"] is None
    # Identical repeats of stored messages are accepted (200 when nothing was new).
    again = await api.post(f"{a}/turn", json={"messages": [msg(1, "yes", "assistant"), msg(2)]})
    assert again.status_code == 200
    mixed = await api.post(f"{a}/turn", json={"messages": [msg(2), msg(3)], "agent": state(3)})
    assert mixed.status_code == 201
    messages, agent = await stored(api, a)
    assert mixed.json() == {"messages": messages[2:], "agent": agent}
    assert agent["message_count"] == 4 and agent["state"]["turn"] == 3


async def test_a_refused_turn_stores_nothing(api, sid):
    a = await setup(api, sid)
    assert (await api.post(f"{a}/turn", json={"messages": [msg(0)], "agent": state(1)})).is_success
    before = await stored(api, a)
    # A message that differs from the stored one: 409, and neither the new message nor the
    # state is written.
    r = await api.post(f"{a}/turn", json={"messages": [msg(1), msg(0, "other")], "agent": state(2)})
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    assert await stored(api, a) == before

    missing = f"{S}/{sid}/agents/nobody/turn"
    r = await api.post(missing, json={"messages": [msg(0)], "agent": state(1)})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await api.post(missing, json={"agent": state(1)})
    assert r.status_code == 404
    r = await api.post(f"{S}/{sid}-none/agents/a/turn", json={"messages": [msg(0)]})
    assert r.status_code == 404

    for body, code in (
        ({}, "invalid_request"),
        ({"messages": []}, "invalid_request"),
        ({"messages": [msg(5), msg(5)]}, "invalid_request"),
        ({"messages": [{"message_id": -1, "message": msg(0)["message"]}]}, "invalid_id"),
        ({"agent": {**state(1), "agent_id": "b"}}, "invalid_id"),
        ({"agent": {"state": []}}, "invalid_request"),
        ({"messages": [msg(i) for i in range(1001)]}, "invalid_request"),
    ):
        r = await api.post(f"{a}/turn", json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (body, r.text)
    assert await stored(api, a) == before


async def test_a_repeated_key_answers_the_first_outcome_and_applies_nothing(api, sid):
    a = await setup(api, sid)
    body = {"messages": [msg(0), msg(1)], "agent": state(1)}
    headers = {"Idempotency-Key": f"{sid}-turn"}
    first = await api.post(f"{a}/turn", json=body, headers=headers)
    assert first.status_code == 201
    version = (await api.get(a)).json()["version"]
    repeats = [await api.post(f"{a}/turn", json=body, headers=headers) for _ in range(2)]
    assert {(r.status_code, r.content) for r in repeats} == {(201, first.content)}
    assert (await api.get(a)).json()["version"] == version  # the state was replaced once
    other = await api.post(f"{a}/turn", json={"agent": state(9)}, headers=headers)
    assert other.status_code == 422 and other.json()["error"]["code"] == "invalid_request"

    # A messages-only turn: its repeat stores nothing new, and answers the first 201.
    headers = {"Idempotency-Key": f"{sid}-messages"}
    once = await api.post(f"{a}/turn", json={"messages": [msg(2)]}, headers=headers)
    twice = await api.post(f"{a}/turn", json={"messages": [msg(2)]}, headers=headers)
    assert once.status_code == twice.status_code == 201 and once.content == twice.content

    # An agent-only turn is recorded too (it wrote something), and replays its 200.
    headers = {"Idempotency-Key": f"{sid}-state"}
    once = await api.post(f"{a}/turn", json={"agent": state(2)}, headers=headers)
    twice = await api.post(f"{a}/turn", json={"agent": state(2)}, headers=headers)
    assert once.status_code == twice.status_code == 200 and once.content == twice.content


async def test_the_lease_fence_covers_a_turn(api, sid):
    a = await setup(api, sid)
    r = await api.post(f"{S}/{sid}/lease", json={"holder": "h", "ttl_seconds": 30})
    assert r.status_code == 201
    token = r.json()["token"]
    body = {"messages": [msg(0)], "agent": state(1)}
    refused = await api.post(f"{a}/turn", json=body)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "session_busy"
    stale = await api.post(f"{a}/turn", json=body, headers={"X-Session-Lease": str(token + 1)})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "lease_lost"
    assert (await stored(api, a))[0] == []
    held = await api.post(f"{a}/turn", json=body, headers={"X-Session-Lease": str(token)})
    assert held.status_code == 201
    assert (await stored(api, a))[1]["state"] == state(1)["state"]


async def test_the_route_is_in_the_openapi_document(api):
    paths = (await api.get("/openapi.json")).json()["paths"]
    post = paths["/api/v1/sessions/{session_id}/agents/{agent_id}/turn"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in post["parameters"]]
    assert {"201", "404", "409", "422"} <= set(post["responses"])
