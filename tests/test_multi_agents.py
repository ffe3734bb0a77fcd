"""Multi-agent states over HTTP (API.md): create (retry-safe), read, replace, delete, versions;
the error envelope and X-Request-ID on every answer."""

from __future__ import annotations

import httpx
import pytest

from tests.contract import S, error, make_session, utc


@pytest.fixture
def G(sid: str) -> str:
    """The multi-agents collection of this test's session."""
    return f"{S}/{sid}/multi-agents"


def graph_state(status: str = "executing", **over: object) -> dict:
    """Shaped like strands.multiagent.Graph.serialize_state()."""
    state: dict = {
        "type": "graph",
        "id": "default_graph",
        "status": status,
        "completed_nodes": ["research"],
        "failed_nodes": [],
        "node_results": {
            "research": {
                "result": {
                    "type": "agent_result",
                    "stop_reason": "end_turn",
                    "message": {"role": "assistant", "content": [{"text": "done"}]},
                },
                "execution_time": 12,
                "status": "completed",
            }
        },
        "next_nodes_to_execute": ["write"],
        "current_task": "Write a report",
        "execution_order": ["research"],
    }
    state.update(over)
    return state


def doc(mid: str = "g1", **over: object) -> dict:
    body: dict = {"multi_agent_id": mid, "state": graph_state()}
    body.update(over)
    return body


async def make(api: httpx.AsyncClient, G: str, mid: str = "g1", **over: object) -> dict:
    r = await api.post(G, json=doc(mid, **over))
    assert r.status_code == 201, r.text
    return r.json()


# --- create ------------------------------------------------------------------------------------


async def test_create_answers_201_with_location_etag_and_the_body_a_get_returns(api, sid, G):
    await make_session(api, sid)
    r = await api.post(G, json=doc())
    assert r.status_code == 201
    assert r.headers["location"] == f"{G}/g1"
    assert r.headers["etag"] == f'"{r.json()["version"]}"'
    body = r.json()
    assert body["multi_agent_id"] == "g1"
    assert body["state"] == graph_state()
    assert list(body["state"]) == list(graph_state())
    assert utc(body["created_at"]) == utc(body["updated_at"])
    got = await api.get(r.headers["location"])
    assert (
        got.status_code == 200 and got.json() == body and got.headers["etag"] == r.headers["etag"]
    )


async def test_client_timestamps_are_ignored(api, sid, G):
    await make_session(api, sid)
    body = await make(
        api, G, created_at="1999-01-01T00:00:00+00:00", updated_at="1999-01-01T00:00:00+00:00"
    )
    assert not body["created_at"].startswith("1999")
    assert not body["updated_at"].startswith("1999")


async def test_identical_repeat_answers_200_with_the_stored_resource(api, sid, G):
    await make_session(api, sid)
    first = await make(api, G)
    again = await api.post(G, json=doc(created_at="2001-01-01T00:00:00+00:00"))
    assert again.status_code == 200
    assert again.json() == first
    assert again.headers["etag"] == f'"{first["version"]}"'
    assert (await api.get(f"{G}/g1")).headers["etag"] == again.headers["etag"]


async def test_different_state_with_the_same_id_is_409_and_keeps_the_stored_one(api, sid, G):
    await make_session(api, sid)
    first = await make(api, G)
    error(await api.post(G, json=doc(state=graph_state("completed"))), 409, "conflict")
    error(await api.post(G, json=doc(state={})), 409, "conflict")
    assert (await api.get(f"{G}/g1")).json() == first


async def test_create_under_a_missing_session_is_404(api, sid, G):
    error(await api.post(G, json=doc()), 404, "not_found")
    error(await api.get(f"{S}/{sid}"), 404, "not_found")
    await make_session(api, sid)
    error(await api.get(f"{G}/g1"), 404, "not_found")


@pytest.mark.parametrize("state", [[1, 2], "graph", 3, None, True])
async def test_state_must_be_an_object(api, sid, G, state):
    await make_session(api, sid)
    error(await api.post(G, json=doc(state=state)), 422, "invalid_request", "state")
    error(await api.get(f"{G}/g1"), 404, "not_found")


async def test_missing_fields_and_bad_bodies_are_422(api, sid, G):
    await make_session(api, sid)
    error(await api.post(G, json={"multi_agent_id": "g1"}), 422, "invalid_request", "state")
    error(await api.post(G, json={"state": {}}), 422, "invalid_id", "multi_agent_id")
    error(await api.post(G, json=[doc()]), 422, "invalid_request")
    error(
        await api.post(
            G,
            content=b'{"multi_agent_id": "g1", "state": {"x": Infinity}}',
            headers={"Content-Type": "application/json"},
        ),
        422,
        "invalid_request",
    )
    error(
        await api.post(
            G, content=b'{"multi_agent_id": ', headers={"Content-Type": "application/json"}
        ),
        422,
        "invalid_request",
    )
    error(
        await api.post(G, content=b"g1", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    error(await api.get(f"{G}/g1"), 404, "not_found")


async def test_state_needs_no_particular_keys_and_comes_back_exactly(api, sid, G):
    await make_session(api, sid)
    assert (await make(api, G, "empty", state={}))["state"] == {}
    state = {
        "z": "nul\u0000 \U0001f600",
        "big": 2**63 - 1,
        "beyond": 2**53 + 1,
        "f": 0.1,
        "bytes": {"__bytes_encoded__": True, "data": "AAE="},
        "a": {"y": 1, "x": 2},
    }
    body = await make(api, G, "odd", state=state)
    got = (await api.get(f"{G}/odd")).json()
    for stored in (body["state"], got["state"]):
        assert stored == state
        assert list(stored) == list(state) and list(stored["a"]) == ["y", "x"]
        assert isinstance(stored["big"], int)


@pytest.mark.parametrize("bad", ["", ".", "..", "g/1", "g\\1", "g\u0001", "  ", "x" * 256])
async def test_invalid_ids_in_the_body_are_422_invalid_id(api, sid, G, bad):
    await make_session(api, sid)
    error(await api.post(G, json=doc(bad)), 422, "invalid_id")


async def test_invalid_ids_in_the_path_are_422_invalid_id(api, sid, G):
    await make_session(api, sid)
    for raw in ("g%2F1", "g%5C1", "%20", "x" * 256, "g%01"):
        error(await api.get(f"{G}/{raw}"), 422, "invalid_id")
        error(await api.put(f"{G}/{raw}", json={"state": {}}), 422, "invalid_id")
        error(await api.delete(f"{G}/{raw}"), 422, "invalid_id")


async def test_ids_travel_percent_encoded(api, sid, G):
    await make_session(api, sid)
    r = await api.post(G, json=doc("swarm #1"))
    assert r.status_code == 201
    assert r.headers["location"] == f"{G}/swarm%20%231"
    assert (await api.get(r.headers["location"])).json()["multi_agent_id"] == "swarm #1"


async def test_states_of_different_sessions_are_separate(api, sid, G):
    await make_session(api, sid)
    await make_session(api, f"{sid}-2")
    other = f"{S}/{sid}-2/multi-agents"
    one = await make(api, G, state={"n": 1})
    two = await make(api, other, state={"n": 2})
    assert (await api.get(f"{G}/g1")).json() == one
    assert (await api.get(f"{other}/g1")).json() == two
    assert (await api.delete(f"{other}/g1")).status_code == 204
    assert (await api.get(f"{G}/g1")).json() == one


# --- read, replace, delete ---------------------------------------------------------------------


async def test_read_missing_state_or_session_is_404(api, sid, G):
    error(await api.get(f"{G}/g1"), 404, "not_found")
    await make_session(api, sid)
    error(await api.get(f"{G}/g1"), 404, "not_found")
    await make(api, G)
    error(await api.get(f"{S}/{sid}-missing/multi-agents/g1"), 404, "not_found")


async def test_put_replaces_state_bumps_version_keeps_created_at(api, sid, G):
    await make_session(api, sid)
    created = await make(api, G)
    new = graph_state("completed", completed_nodes=["research", "write"], next_nodes_to_execute=[])
    r = await api.put(f"{G}/g1", json={"state": new, "created_at": "1999-01-01T00:00:00Z"})
    assert r.status_code == 200
    assert r.json()["version"] > created["version"]
    body = r.json()
    assert body["multi_agent_id"] == "g1"
    assert body["state"] == new and list(body["state"]) == list(new)
    assert body["created_at"] == created["created_at"]
    assert utc(body["updated_at"]) >= utc(created["updated_at"])
    got = await api.get(f"{G}/g1")
    assert got.json() == body and got.headers["etag"] == r.headers["etag"]
    third = await api.put(f"{G}/g1", json=doc("g1", state={"replaced": True}))
    assert third.status_code == 200 and third.json()["state"] == {"replaced": True}
    assert third.json()["version"] > body["version"]


async def test_put_never_creates(api, sid, G):
    error(await api.put(f"{G}/g1", json=doc()), 404, "not_found")
    await make_session(api, sid)
    error(await api.put(f"{G}/g1", json=doc()), 404, "not_found")
    error(
        await api.put(f"{G}/g1", json={"state": {}}, headers={"If-Match": '"1"'}), 404, "not_found"
    )
    error(await api.get(f"{G}/g1"), 404, "not_found")
    assert (await api.post(G, json=doc())).status_code == 201


async def test_put_body_id_must_match_the_path(api, sid, G):
    await make_session(api, sid)
    created = await make(api, G)
    error(await api.put(f"{G}/g1", json=doc("g2")), 422, "invalid_id", "multi_agent_id")
    assert (await api.get(f"{G}/g1")).json() == created
    error(await api.get(f"{G}/g2"), 404, "not_found")
    assert (await api.put(f"{G}/g1", json=doc("g1", state={"a": 1}))).status_code == 200


async def test_put_state_must_be_an_object(api, sid, G):
    await make_session(api, sid)
    created = await make(api, G)
    for state in ([1], "s", None):
        error(await api.put(f"{G}/g1", json={"state": state}), 422, "invalid_request", "state")
    error(await api.put(f"{G}/g1", json={}), 422, "invalid_request", "state")
    error(
        await api.put(f"{G}/g1", content=b"{}", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    got = await api.get(f"{G}/g1")
    assert got.json() == created and got.headers["etag"] == f'"{created["version"]}"'


async def test_if_match_and_if_none_match(api, sid, G):
    await make_session(api, sid)
    v1 = f'"{(await make(api, G))["version"]}"'
    error(
        await api.put(f"{G}/g1", json={"state": {"v": 2}}, headers={"If-Match": '"1234567"'}),
        412,
        "precondition_failed",
    )
    error(
        await api.put(f"{G}/g1", json={"state": {"v": 2}}, headers={"If-Match": "1"}),
        412,
        "precondition_failed",
    )
    ok = await api.put(f"{G}/g1", json={"state": {"v": 2}}, headers={"If-Match": v1})
    assert ok.status_code == 200
    v2 = ok.headers["etag"]
    error(
        await api.put(f"{G}/g1", json={"state": {"v": 3}}, headers={"If-Match": v1}),
        412,
        "precondition_failed",
    )
    assert (await api.get(f"{G}/g1")).json()["state"] == {"v": 2}

    nm = await api.get(f"{G}/g1", headers={"If-None-Match": v2})
    assert nm.status_code == 304 and nm.content == b"" and nm.headers["etag"] == v2
    fresh = await api.get(f"{G}/g1", headers={"If-None-Match": v1})
    assert fresh.status_code == 200 and fresh.json()["state"] == {"v": 2}

    # without If-Match the last writer wins
    v3 = (await api.put(f"{G}/g1", json={"state": {"v": 4}})).headers["etag"]
    assert v3 not in (v1, v2)
    error(await api.delete(f"{G}/g1", headers={"If-Match": v2}), 412, "precondition_failed")
    assert (await api.get(f"{G}/g1")).status_code == 200
    assert (await api.delete(f"{G}/g1", headers={"If-Match": v3})).status_code == 204
    error(await api.delete(f"{G}/g1", headers={"If-Match": v3}), 404, "not_found")


async def test_delete_answers_204_then_404(api, sid, G):
    error(await api.delete(f"{G}/g1"), 404, "not_found")
    await make_session(api, sid)
    error(await api.delete(f"{G}/g1"), 404, "not_found")
    old = (await make(api, G, "g1"))["version"]
    await make(api, G, "g2")
    r = await api.delete(f"{G}/g1")
    assert r.status_code == 204 and r.content == b""
    error(await api.get(f"{G}/g1"), 404, "not_found")
    error(await api.delete(f"{G}/g1"), 404, "not_found")
    assert (await api.get(f"{G}/g2")).status_code == 200
    # the id is free again
    again = await api.post(G, json=doc("g1", state={"fresh": True}))
    assert again.status_code == 201 and again.json()["version"] > old  # never an old ETag


async def test_wrong_methods_are_405(api, sid, G):
    await make_session(api, sid)
    await make(api, G)
    error(await api.post(f"{G}/g1", json=doc()), 405, "method_not_allowed")
    error(await api.delete(G), 405, "method_not_allowed")
    r = await api.get(f"{G}/g1", headers={"X-Request-ID": "graph-run-7"})
    assert r.headers["x-request-id"] == "graph-run-7"
    missing = await api.get(f"{G}/nope", headers={"X-Request-ID": "graph-run-8"})
    assert error(missing, 404, "not_found")["request_id"] == "graph-run-8"
