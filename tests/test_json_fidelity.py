"""Whatever a client stores comes back equal, key order included; NaN/Infinity are refused."""

from __future__ import annotations

import json

import httpx
import pytest

S = "/api/v1/sessions"

TRICKY = {
    "zeta": 1,
    "alpha": {"b": 2, "a": 1, "": "empty key"},
    "nul": "before\u0000after",
    "emoji": "\U0001f600 \U00010348 日本",
    "big": 2**53 + 1,
    "i64": 2**63 - 1,
    "neg64": -(2**63),
    "u64": 2**64 - 1,
    "huge": 2**70,
    "neghuge": -(2**70),
    "floats": [0.1, 1e-300, 1.7976931348623157e308, -0.0, 1.0, 2.5e16],
    "escapes": 'quote " backslash \\ tab \t newline \n \u2028',
    "bytes": {"__bytes_encoded__": True, "data": "AAEC/w=="},
    "nested": [[[[{"deep": [None, True, False]}]]]],
}


async def post_raw(client: httpx.AsyncClient, path: str, text: str) -> httpx.Response:
    return await client.post(
        path, content=text.encode(), headers={"content-type": "application/json"}
    )


@pytest.fixture
async def agent(client: httpx.AsyncClient) -> str:
    await client.post(S, json={"session_id": "s"})
    r = await client.post(
        f"{S}/s/agents",
        json={
            "agent_id": "a",
            "state": TRICKY,
            "conversation_manager_state": {"__name__": "x"},
            "_internal_state": {"interrupt_state": {"activated": False}},
        },
    )
    assert r.status_code == 201, r.text
    return f"{S}/s/agents/a"


def exact(text: str) -> object:
    """Parse keeping key order as pairs, so equality checks order too."""
    return json.loads(text, object_pairs_hook=lambda pairs: pairs)


async def test_agent_state_round_trips_exactly(client, agent):
    body = (await client.get(agent)).text
    stored = json.loads(body)["state"]
    assert stored == TRICKY
    assert exact(json.dumps(stored)) == exact(json.dumps(TRICKY))  # key order
    assert isinstance(stored["huge"], int) and stored["huge"] == 2**70
    assert stored["nul"] == "before\u0000after"
    assert str(stored["floats"][3]) == "-0.0"


async def test_message_with_extra_keys_round_trips_in_order(client, agent):
    message = {
        "role": "assistant",
        "content": [
            {"toolUse": {"input": {"b": 1, "a": "\u0000"}, "name": "t", "toolUseId": "1"}},
            {"text": "\U0001f600"},
        ],
        "metadata": {"usage": {"z": 1, "a": 2}},
        "tracking_id": "t-1",
    }
    r = await client.post(f"{agent}/messages", json={"message_id": 0, "message": message})
    assert r.status_code == 201
    got = (await client.get(f"{agent}/messages/0")).json()["message"]
    assert exact(json.dumps(got)) == exact(json.dumps(message))
    listed = (await client.get(f"{agent}/messages")).json()["items"][0]["message"]
    assert exact(json.dumps(listed)) == exact(json.dumps(message))


async def test_raw_text_with_big_numbers_is_not_changed(client, agent):
    text = (
        '{"state": {"n": 123456789012345678901234567890, "m": -9223372036854775809,'
        ' "f": 1.5}, "conversation_manager_state": {}}'
    )
    r = await client.put(agent, content=text, headers={"content-type": "application/json"})
    assert r.status_code == 200
    assert '"n":123456789012345678901234567890' in (await client.get(agent)).text
    assert '"m":-9223372036854775809' in (await client.get(agent)).text


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_nan_and_infinity_are_422(client, agent, literal):
    text = f'{{"state": {{"x": {literal}}}, "conversation_manager_state": {{}}}}'
    r = await client.put(agent, content=text, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("literal", ["NaN", "Infinity"])
async def test_nan_is_422_on_the_exact_path_too(client, agent, literal):
    # a long digit run sends the body through the standard-library parser
    text = (
        f'{{"state": {{"x": {literal}, "n": 12345678901234567890123}},'
        ' "conversation_manager_state": {}}'
    )
    r = await client.put(agent, content=text, headers={"content-type": "application/json"})
    assert r.status_code == 422


@pytest.mark.parametrize(
    "text",
    [
        '{"state": {"s": "\\ud800"}, "conversation_manager_state": {}}',
        '{"state": {"s": "\\ud800", "n": 12345678901234567890123},'
        ' "conversation_manager_state": {}}',
    ],
)
async def test_lone_surrogates_are_422(client, agent, text):
    r = await client.put(agent, content=text, headers={"content-type": "application/json"})
    assert r.status_code == 422


async def test_invalid_utf8_is_422(client, agent):
    r = await client.put(
        agent,
        content=b'{"state": {"s": "\xff\xfe"}, "conversation_manager_state": {}}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    assert "error" in r.json()


async def test_nothing_is_written_by_a_refused_body(client, agent):
    before = (await client.get(agent)).text
    await client.put(
        agent,
        content=b'{"state": {"x": NaN}, "conversation_manager_state": {}}',
        headers={"content-type": "application/json"},
    )
    assert (await client.get(agent)).text == before
