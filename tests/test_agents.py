"""Agents over HTTP (API.md): create (retry-safe), read, replace, delete, list, versions,
message_count, and the error envelope / X-Request-ID on every answer."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from service.app import create_app
from tests.conftest import app_client, make_settings
from tests.contract import CMS, S, checked, error, make_session, utc


@pytest.fixture
def A(sid: str) -> str:
    """The agents collection of this test's session."""
    return f"{S}/{sid}/agents"


def agent_doc(aid: str = "a1", **over: object) -> dict:
    doc: dict = {
        "agent_id": aid,
        "state": {"zeta": 1, "alpha": {"b": [1, 2], "a": None}},
        "conversation_manager_state": dict(CMS),
        "_internal_state": {
            "interrupt_state": {"interrupts": {}, "context": {}, "activated": False}
        },
    }
    doc.update(over)
    return doc


async def make_agent(api: httpx.AsyncClient, base: str, aid: str = "a1", **over: object) -> dict:
    r = await api.post(base, json=agent_doc(aid, **over))
    assert r.status_code == 201, r.text
    return r.json()


def message(i: int, text: str | None = None) -> dict:
    return {
        "message_id": i,
        "message": {
            "role": "user" if i % 2 == 0 else "assistant",
            "content": [{"text": text or f"m{i}"}],
        },
    }


# --- create ------------------------------------------------------------------------------------


async def test_create_answers_201_with_location_etag_and_the_body_a_get_returns(api, sid, A):
    await make_session(api, sid)
    doc = agent_doc()
    r = await api.post(A, json=doc)
    assert r.status_code == 201
    assert r.headers["location"] == f"{A}/a1"
    assert r.headers["etag"] == f'"{r.json()["version"]}"'
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["agent_id"] == "a1"
    assert body["state"] == doc["state"]
    assert list(body["state"]) == ["zeta", "alpha"]
    assert list(body["state"]["alpha"]) == ["b", "a"]
    assert body["conversation_manager_state"] == CMS
    assert list(body["conversation_manager_state"]) == list(CMS)
    assert body["_internal_state"] == doc["_internal_state"]
    assert body["message_count"] == 0
    assert utc(body["created_at"]) == utc(body["updated_at"])
    assert abs(utc(body["created_at"]) - datetime.now(utc(body["created_at"]).tzinfo)) < timedelta(
        minutes=5
    )

    got = await api.get(r.headers["location"])
    assert got.status_code == 200
    assert got.json() == body
    assert got.headers["etag"] == r.headers["etag"]


async def test_client_timestamps_and_message_count_are_ignored(api, sid, A):
    await make_session(api, sid)
    r = await api.post(
        A,
        json=agent_doc(
            created_at="1999-01-01T00:00:00+00:00",
            updated_at="1999-01-01T00:00:00+00:00",
            message_count=42,
        ),
    )
    assert r.status_code == 201
    body = r.json()
    assert not body["created_at"].startswith("1999")
    assert not body["updated_at"].startswith("1999")
    assert body["message_count"] == 0
    assert (await api.get(f"{A}/a1")).json() == body


async def test_internal_state_defaults_to_empty_object(api, sid, A):
    await make_session(api, sid)
    doc = agent_doc()
    del doc["_internal_state"]
    r = await api.post(A, json=doc)
    assert r.status_code == 201
    assert r.json()["_internal_state"] == {}
    assert (await api.get(f"{A}/a1")).json()["_internal_state"] == {}


async def test_identical_repeat_answers_200_with_the_stored_resource(api, sid, A):
    await make_session(api, sid)
    first = (await api.post(A, json=agent_doc())).json()
    again = await api.post(A, json=agent_doc(created_at="1999-01-01T00:00:00+00:00"))
    assert again.status_code == 200
    assert again.json() == first
    assert again.headers["etag"] == f'"{first["version"]}"'
    # the stored resource, server fields included: message_count counts what is stored now
    await api.post(f"{A}/a1/messages", json=message(0))
    third = await api.post(A, json=agent_doc())
    assert third.status_code == 200
    assert third.json() == {**first, "message_count": 1}
    assert third.json() == (await api.get(f"{A}/a1")).json()


@pytest.mark.parametrize(
    "change",
    [
        {"state": {"zeta": 2}},
        {"conversation_manager_state": {**CMS, "removed_message_count": 3}},
        {"_internal_state": {}},
    ],
)
async def test_different_body_with_the_same_id_is_409_and_keeps_the_stored_one(api, sid, A, change):
    await make_session(api, sid)
    first = await make_agent(api, A)
    r = await api.post(A, json=agent_doc(**change))
    error(r, 409, "conflict")
    assert (await api.get(f"{A}/a1")).json() == first


async def test_create_under_a_missing_session_is_404(api, sid, A):
    r = await api.post(A, json=agent_doc())
    error(r, 404, "not_found")
    error(await api.get(f"{S}/{sid}"), 404, "not_found")
    await make_session(api, sid)
    error(await api.get(f"{A}/a1"), 404, "not_found")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("state", [1, 2]),
        ("state", "text"),
        ("state", None),
        ("conversation_manager_state", [CMS]),
        ("conversation_manager_state", 3),
        ("_internal_state", []),
    ],
)
async def test_documents_must_be_objects(api, sid, A, field, value):
    await make_session(api, sid)
    r = await api.post(A, json=agent_doc(**{field: value}))
    error(r, 422, "invalid_request", field)
    error(await api.get(f"{A}/a1"), 404, "not_found")


async def test_missing_required_fields_are_422(api, sid, A):
    await make_session(api, sid)
    for field in ("state", "conversation_manager_state"):
        doc = agent_doc()
        del doc[field]
        error(await api.post(A, json=doc), 422, "invalid_request", field)
    doc = agent_doc()
    del doc["agent_id"]
    error(await api.post(A, json=doc), 422, "invalid_id", "agent_id")
    error(await api.post(A, json=[agent_doc()]), 422, "invalid_request")
    assert (await api.get(A)).json() == {"items": [], "next_cursor": None}


async def test_state_conversation_manager_state_need_no_particular_keys(api, sid, A):
    await make_session(api, sid)
    r = await api.post(A, json=agent_doc(state={}, conversation_manager_state={}))
    assert r.status_code == 201
    assert r.json()["conversation_manager_state"] == {}


@pytest.mark.parametrize(
    "bad", ["", ".", "..", "a/b", "a\\b", "a\nb", "tab\there", "   ", "x" * 256]
)
async def test_invalid_agent_id_in_the_body_is_422_invalid_id(api, sid, A, bad):
    await make_session(api, sid)
    error(await api.post(A, json=agent_doc(bad)), 422, "invalid_id")
    assert (await api.get(A)).json()["items"] == []


async def test_invalid_agent_id_in_the_path_is_422_invalid_id(api, sid, A):
    await make_session(api, sid)
    for raw in ("a%2Fb", "a%5Cb", "%20%20", "x" * 256, "a%0Ab", "%2E%2E"):
        error(await api.get(f"{A}/{raw}"), 422, "invalid_id")
        error(await api.put(f"{A}/{raw}", json=agent_doc(None)), 422, "invalid_id")
        error(await api.delete(f"{A}/{raw}"), 422, "invalid_id")


async def test_ids_travel_percent_encoded_and_255_characters_are_fine(api, sid, A):
    await make_session(api, sid)
    r = await api.post(A, json=agent_doc("a b%é"))
    assert r.status_code == 201
    assert r.headers["location"] == f"{A}/a%20b%25%C3%A9"
    got = await api.get(r.headers["location"])
    assert got.status_code == 200 and got.json()["agent_id"] == "a b%é"
    long_id = "x" * 255
    assert (await api.post(A, json=agent_doc(long_id))).status_code == 201
    assert (await api.get(f"{A}/{long_id}")).json()["agent_id"] == long_id


async def test_non_json_bodies_and_wrong_methods(api, sid, A):
    await make_session(api, sid)
    r = await api.post(A, content=b"agent_id=a1", headers={"Content-Type": "text/plain"})
    error(r, 415, "unsupported_media_type")
    r = await api.post(
        A, content=b'{"agent_id": "a1", ', headers={"Content-Type": "application/json"}
    )
    error(r, 422, "invalid_request")
    r = await api.post(
        A,
        content=b'{"agent_id": "a1", "state": {"x": NaN}, "conversation_manager_state": {}}',
        headers={"Content-Type": "application/json"},
    )
    error(r, 422, "invalid_request")
    error(await api.delete(A), 405, "method_not_allowed")
    error(await api.post(f"{A}/a1", json=agent_doc()), 405, "method_not_allowed")
    assert (await api.get(A)).json()["items"] == []


async def test_state_values_come_back_exactly(api, sid, A):
    await make_session(api, sid)
    state = {
        "nul": "a\u0000b",
        "astral": "\U0001f600 \U00010348",
        "big": 2**63 - 1,
        "neg": -(2**63),
        "beyond_2_53": 2**53 + 1,
        "float": 0.1,
        "exp": 1.5e300,
        "bytes": {"__bytes_encoded__": True, "data": "AAEC/w=="},
        "order": {"z": 1, "y": 2, "x": 3},
        "nested": [[{"b": 1, "a": 2}]],
        "empty": {},
    }
    body = (await api.post(A, json=agent_doc(state=state))).json()
    assert body["state"] == state
    assert list(body["state"]) == list(state)
    got = (await api.get(f"{A}/a1")).json()
    assert got["state"] == state and list(got["state"]["order"]) == ["z", "y", "x"]
    assert isinstance(got["state"]["big"], int) and got["state"]["big"] == 2**63 - 1


# --- read --------------------------------------------------------------------------------------


async def test_read_missing_agent_or_session_is_404(api, sid, A):
    error(await api.get(f"{A}/a1"), 404, "not_found")
    await make_session(api, sid)
    error(await api.get(f"{A}/a1"), 404, "not_found")
    await make_agent(api, A)
    error(await api.get(f"{S}/{sid}-other/agents/a1"), 404, "not_found")


async def test_agents_of_different_sessions_are_separate(api, sid, A):
    await make_session(api, sid)
    await make_session(api, f"{sid}-2")
    other = f"{S}/{sid}-2/agents"
    one = await make_agent(api, A, "a1", state={"n": 1})
    two = await make_agent(api, other, "a1", state={"n": 2})
    assert (await api.get(f"{A}/a1")).json() == one
    assert (await api.get(f"{other}/a1")).json() == two
    assert (await api.delete(f"{other}/a1")).status_code == 204
    assert (await api.get(f"{A}/a1")).json() == one


async def test_request_id_is_echoed_and_named_in_errors(api, sid, A):
    await make_session(api, sid)
    ok = await api.get(A, headers={"X-Request-ID": "trace-123"})
    assert ok.headers["x-request-id"] == "trace-123"
    missing = await api.get(f"{A}/nope", headers={"X-Request-ID": "trace-456"})
    assert missing.headers["x-request-id"] == "trace-456"
    assert error(missing, 404, "not_found")["request_id"] == "trace-456"
    generated = await api.get(f"{A}/nope")
    assert generated.headers["x-request-id"] not in ("trace-123", "trace-456")


# --- replace -----------------------------------------------------------------------------------


async def test_put_replaces_documents_bumps_version_keeps_created_at(api, sid, A):
    await make_session(api, sid)
    created = await make_agent(api, A)
    await api.post(f"{A}/a1/messages", json=message(0))
    new = {
        "state": {"k": "v"},
        "conversation_manager_state": {**CMS, "removed_message_count": 1},
        "_internal_state": {"model_state": {"x": 1}},
    }
    r = await api.put(f"{A}/a1", json=new)
    assert r.status_code == 200
    assert r.json()["version"] > created["version"]
    assert r.headers["etag"] == f'"{r.json()["version"]}"'
    body = r.json()
    assert body["state"] == new["state"]
    assert body["conversation_manager_state"] == new["conversation_manager_state"]
    assert body["_internal_state"] == new["_internal_state"]
    assert body["agent_id"] == "a1"
    assert body["message_count"] == 1
    assert body["created_at"] == created["created_at"]
    assert utc(body["updated_at"]) >= utc(created["updated_at"])
    got = await api.get(f"{A}/a1")
    assert got.json() == body and got.headers["etag"] == r.headers["etag"]


async def test_put_with_a_client_created_at_keeps_the_stored_one(api, sid, A):
    await make_session(api, sid)
    created = await make_agent(api, A)
    r = await api.put(
        f"{A}/a1", json=agent_doc(created_at="1999-01-01T00:00:00+00:00", message_count=99)
    )
    assert r.status_code == 200
    assert r.json()["created_at"] == created["created_at"]
    assert r.json()["message_count"] == 0


async def test_put_without_internal_state_replaces_it_with_empty(api, sid, A):
    await make_session(api, sid)
    await make_agent(api, A)
    r = await api.put(f"{A}/a1", json={"state": {}, "conversation_manager_state": CMS})
    assert r.status_code == 200
    assert r.json()["_internal_state"] == {}
    assert (await api.get(f"{A}/a1")).json()["_internal_state"] == {}


async def test_put_never_creates(api, sid, A):
    error(await api.put(f"{A}/a1", json=agent_doc()), 404, "not_found")
    await make_session(api, sid)
    error(await api.put(f"{A}/a1", json=agent_doc()), 404, "not_found")
    error(await api.get(f"{A}/a1"), 404, "not_found")
    assert (await api.get(A)).json() == {"items": [], "next_cursor": None}


async def test_put_body_id_must_match_the_path(api, sid, A):
    await make_session(api, sid)
    created = await make_agent(api, A)
    error(await api.put(f"{A}/a1", json=agent_doc("other")), 422, "invalid_id")
    assert (await api.get(f"{A}/a1")).json() == created
    error(await api.get(f"{A}/other"), 404, "not_found")
    same = await api.put(f"{A}/a1", json=agent_doc("a1", state={"ok": True}))
    assert same.status_code == 200 and same.json()["state"] == {"ok": True}
    omitted = agent_doc(state={"ok": 2})
    del omitted["agent_id"]
    assert (await api.put(f"{A}/a1", json=omitted)).status_code == 200


async def test_put_validates_like_post(api, sid, A):
    await make_session(api, sid)
    created = await make_agent(api, A)
    error(await api.put(f"{A}/a1", json=agent_doc(state=[1])), 422, "invalid_request", "state")
    error(
        await api.put(f"{A}/a1", json=agent_doc(_internal_state="x")),
        422,
        "invalid_request",
        "_internal_state",
    )
    doc = agent_doc()
    del doc["conversation_manager_state"]
    error(await api.put(f"{A}/a1", json=doc), 422, "invalid_request", "conversation_manager_state")
    error(
        await api.put(f"{A}/a1", content=b"x", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    got = await api.get(f"{A}/a1")
    assert got.json() == created and got.headers["etag"] == f'"{created["version"]}"'


# --- versions ----------------------------------------------------------------------------------


async def test_if_match_and_if_none_match(api, sid, A):
    await make_session(api, sid)
    v1 = f'"{(await make_agent(api, A))["version"]}"'
    error(
        await api.put(f"{A}/a1", json=agent_doc(), headers={"If-Match": '"1234567"'}),
        412,
        "precondition_failed",
    )
    error(
        await api.put(f"{A}/a1", json=agent_doc(), headers={"If-Match": "garbage"}),
        412,
        "precondition_failed",
    )
    ok = await api.put(f"{A}/a1", json=agent_doc(state={"v": 2}), headers={"If-Match": v1})
    assert ok.status_code == 200
    v2 = ok.headers["etag"]
    stale = await api.put(f"{A}/a1", json=agent_doc(state={"v": 3}), headers={"If-Match": v1})
    error(stale, 412, "precondition_failed")
    assert (await api.get(f"{A}/a1")).json()["state"] == {"v": 2}

    not_modified = await api.get(f"{A}/a1", headers={"If-None-Match": v2})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == v2
    fresh = await api.get(f"{A}/a1", headers={"If-None-Match": v1})
    assert fresh.status_code == 200 and fresh.json()["state"] == {"v": 2}

    # without If-Match the last writer wins
    v3 = (await api.put(f"{A}/a1", json=agent_doc(state={"v": 4}))).headers["etag"]
    assert v3 not in (v1, v2)

    error(await api.delete(f"{A}/a1", headers={"If-Match": v2}), 412, "precondition_failed")
    assert (await api.get(f"{A}/a1")).status_code == 200
    assert (await api.delete(f"{A}/a1", headers={"If-Match": v3})).status_code == 204
    # a missing agent is 404, whatever If-Match says
    error(await api.put(f"{A}/a1", json=agent_doc(), headers={"If-Match": v3}), 404, "not_found")
    error(await api.delete(f"{A}/a1", headers={"If-Match": v3}), 404, "not_found")


async def test_a_repeated_create_does_not_bump_the_version(api, sid, A):
    await make_session(api, sid)
    v1 = f'"{(await make_agent(api, A))["version"]}"'
    await api.post(A, json=agent_doc())
    assert (await api.get(f"{A}/a1")).headers["etag"] == v1
    assert (await api.put(f"{A}/a1", json=agent_doc(), headers={"If-Match": v1})).status_code == 200


# --- message_count -----------------------------------------------------------------------------


async def test_message_count_follows_appends_and_deletes_and_is_never_stale(api, sid, A):
    await make_session(api, sid)
    await make_agent(api, A)

    async def count() -> int:
        # twice: the second read may come from the cache and must agree
        first = (await api.get(f"{A}/a1")).json()["message_count"]
        second = (await api.get(f"{A}/a1")).json()["message_count"]
        assert first == second
        return first

    assert await count() == 0
    assert (await api.post(f"{A}/a1/messages", json=message(0))).status_code == 201
    assert await count() == 1
    assert (await api.post(f"{A}/a1/messages", json=message(0))).status_code == 200  # repeat
    assert await count() == 1
    batch = {"messages": [message(i) for i in range(1, 5)]}
    assert (await api.post(f"{A}/a1/messages/batch", json=batch)).status_code == 201
    assert await count() == 5
    assert (await api.put(f"{A}/a1/messages/1", json=message(1, "edited"))).status_code == 200
    assert await count() == 5
    assert (await api.delete(f"{A}/a1/messages/2")).status_code == 204
    assert await count() == 4
    listed = (await api.get(A)).json()["items"]
    assert [a["message_count"] for a in listed] == [4]
    assert (await api.put(f"{A}/a1", json=agent_doc())).json()["message_count"] == 4
    assert (await api.post(f"{A}/a1/messages", json=message(9))).status_code == 201
    assert await count() == 5


async def test_message_count_counts_only_this_agents_messages(api, sid, A):
    await make_session(api, sid)
    await make_agent(api, A, "a1")
    await make_agent(api, A, "a2")
    await api.post(f"{A}/a1/messages/batch", json={"messages": [message(i) for i in range(3)]})
    await api.post(f"{A}/a2/messages", json=message(0))
    assert (await api.get(f"{A}/a1")).json()["message_count"] == 3
    assert (await api.get(f"{A}/a2")).json()["message_count"] == 1


# --- list --------------------------------------------------------------------------------------


async def test_list_pages_in_agent_id_order_until_next_cursor_is_null(api, sid, A):
    await make_session(api, sid)
    ids = ["b", "a", "e", "c", "d"]
    for aid in ids:
        await make_agent(api, A, aid, state={"id": aid})
    await api.post(f"{A}/c/messages", json=message(0))

    everything = await api.get(A)
    assert everything.status_code == 200
    page = everything.json()
    assert set(page) == {"items", "next_cursor"}
    assert [a["agent_id"] for a in page["items"]] == sorted(ids)
    assert page["next_cursor"] is None
    for item in page["items"]:
        assert item == (await api.get(f"{A}/{item['agent_id']}")).json()

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        r = await api.get(A, params=params)
        assert r.status_code == 200
        body = r.json()
        assert 1 <= len(body["items"]) <= 2
        seen += [a["agent_id"] for a in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor
    assert seen == sorted(ids) and pages == 3


async def test_list_ends_with_null_cursor_when_the_last_page_is_exactly_full(api, sid, A):
    await make_session(api, sid)
    for aid in ("a", "b", "c", "d"):
        await make_agent(api, A, aid)
    first = (await api.get(A, params={"limit": 2})).json()
    assert [a["agent_id"] for a in first["items"]] == ["a", "b"]
    second = (await api.get(A, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [a["agent_id"] for a in second["items"]] == ["c", "d"]
    assert second["next_cursor"] is None
    whole = (await api.get(A, params={"limit": 4})).json()
    assert len(whole["items"]) == 4 and whole["next_cursor"] is None


async def test_list_does_not_skip_or_repeat_when_agents_are_added_between_pages(api, sid, A):
    await make_session(api, sid)
    for aid in ("b", "d", "f", "h"):
        await make_agent(api, A, aid)
    first = (await api.get(A, params={"limit": 2})).json()
    assert [a["agent_id"] for a in first["items"]] == ["b", "d"]
    await make_agent(api, A, "a")  # before the cursor: not shown again
    await make_agent(api, A, "e")  # after it: shown
    rest = (await api.get(A, params={"limit": 10, "cursor": first["next_cursor"]})).json()
    assert [a["agent_id"] for a in rest["items"]] == ["e", "f", "h"]


async def test_list_of_an_empty_session_and_of_a_missing_one(api, sid, A):
    error(await api.get(A), 404, "not_found")
    await make_session(api, sid)
    r = await api.get(A)
    assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}
    error(await api.get(f"{S}/{sid}-missing/agents", params={"limit": 5}), 404, "not_found")


async def test_list_limit_bounds_and_bad_cursors(api, sid, A):
    await make_session(api, sid)
    await make_session(api, f"{sid}-2")
    for aid in ("a", "b", "c"):
        await make_agent(api, A, aid)
        await make_agent(api, f"{S}/{sid}-2/agents", aid)
    for limit in (0, -1, 1001, "x"):
        error(await api.get(A, params={"limit": limit}), 422, "invalid_request", "limit")
    assert (await api.get(A, params={"limit": 1000})).status_code == 200
    assert len((await api.get(A, params={"limit": 1})).json()["items"]) == 1

    cursor = (await api.get(A, params={"limit": 1})).json()["next_cursor"]
    for garbled in ("garbage", "", "!!!", cursor[:-3], cursor + "AAAA", "A" * 40):
        error(await api.get(A, params={"cursor": garbled}), 422, "invalid_request")
    forged = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    error(await api.get(A, params={"cursor": forged}), 422, "invalid_request")
    # a cursor from another session's list
    error(await api.get(f"{S}/{sid}-2/agents", params={"cursor": cursor}), 422, "invalid_request")
    # a cursor from the sessions list
    sessions_cursor = (await api.get(S, params={"limit": 1})).json()["next_cursor"]
    error(await api.get(A, params={"cursor": sessions_cursor}), 422, "invalid_request")
    # still fine where it came from
    assert [
        a["agent_id"] for a in (await api.get(A, params={"cursor": cursor})).json()["items"]
    ] == ["b", "c"]


# --- delete ------------------------------------------------------------------------------------


async def test_delete_removes_the_agent_and_its_messages(api, sid, A):
    await make_session(api, sid)
    await make_agent(api, A, "a1")
    await make_agent(api, A, "a2")
    await api.post(f"{A}/a1/messages/batch", json={"messages": [message(i) for i in range(3)]})
    await api.post(f"{A}/a2/messages", json=message(0))
    r = await api.delete(f"{A}/a1")
    assert r.status_code == 204 and r.content == b""
    error(await api.get(f"{A}/a1"), 404, "not_found")
    error(await api.get(f"{A}/a1/messages"), 404, "not_found")
    error(await api.get(f"{A}/a1/messages/0"), 404, "not_found")
    error(await api.delete(f"{A}/a1"), 404, "not_found")
    assert [a["agent_id"] for a in (await api.get(A)).json()["items"]] == ["a2"]
    assert len((await api.get(f"{A}/a2/messages")).json()["items"]) == 1
    # the id is free again, with nothing under it
    again = await make_agent(api, A, "a1")
    assert again["message_count"] == 0
    assert (await api.get(f"{A}/a1")).headers["etag"] == f'"{again["version"]}"'
    assert (await api.get(f"{A}/a1/messages")).json() == {"items": [], "next_cursor": None}
    assert (await api.get(f"{A}/a1")).json()["message_count"] == 0


async def test_delete_under_a_missing_session_or_agent_is_404(api, sid, A):
    error(await api.delete(f"{A}/a1"), 404, "not_found")
    await make_session(api, sid)
    error(await api.delete(f"{A}/a1"), 404, "not_found")


async def test_recreated_agent_is_not_served_from_a_stale_cache(api, sid, A):
    await make_session(api, sid)
    await make_agent(api, A, state={"old": True})
    await api.get(f"{A}/a1")
    await api.get(f"{A}/a1")
    assert (await api.delete(f"{S}/{sid}")).status_code == 204
    await make_session(api, sid)
    await make_agent(api, A, state={"new": True})
    got = await api.get(f"{A}/a1")
    assert got.json()["state"] == {"new": True}


async def test_the_agent_etag_is_its_version_which_appends_do_not_change(api, sid, A):
    """The contract makes the ETag the agent's version; appends leave the agent row (and so its
    version) alone, or Strands' update_agent with If-Match would fail after every turn. A 304
    therefore confirms the agent's own fields, not the derived message_count (docs/api.md)."""
    await make_session(api, sid)
    await make_agent(api, A)
    before = await api.get(f"{A}/a1")
    assert before.json()["message_count"] == 0
    await api.post(f"{A}/a1/messages", json=message(0))
    again = await api.get(f"{A}/a1", headers={"If-None-Match": before.headers["etag"]})
    assert again.status_code == 304 and again.headers["etag"] == before.headers["etag"]
    fresh = await api.get(f"{A}/a1")
    assert fresh.json()["message_count"] == 1  # an unconditional GET sees the new count
    updated = await api.put(
        f"{A}/a1",
        json={"state": {}, "conversation_manager_state": {}},
        headers={"If-Match": before.headers["etag"]},
    )
    assert updated.status_code == 200


async def test_a_replica_never_serves_a_stale_agent_in_strict_mode(
    api, sid, A, module_database_url
):
    """Two processes on one database (CACHE_MODE=strict, the default): what one commits, a GET
    on the other shows at once, though the other has the agent in its cache."""
    await make_session(api, sid)
    await make_agent(api, A)
    for _ in range(2):
        assert (await api.get(f"{A}/a1")).json()["message_count"] == 0  # cached here
    async with app_client(create_app(make_settings(), dsn=module_database_url)) as other:
        other.event_hooks["response"].append(checked)
        assert (await other.post(f"{A}/a1/messages", json=message(0))).status_code == 201
        assert (await api.get(f"{A}/a1")).json()["message_count"] == 1
        await other.post(f"{A}/a1/messages/batch", json={"messages": [message(1), message(2)]})
        assert (await api.get(f"{A}/a1")).json()["message_count"] == 3
        assert (await other.delete(f"{A}/a1/messages/0")).status_code == 204
        assert (await api.get(f"{A}/a1")).json()["message_count"] == 2
        put = await other.put(f"{A}/a1", json=agent_doc(state={"v": 2}))
        assert put.status_code == 200
        got = await api.get(f"{A}/a1")
        assert got.json()["state"] == {"v": 2} and got.headers["etag"] == put.headers["etag"]
        assert (await other.delete(f"{A}/a1")).status_code == 204
        error(await api.get(f"{A}/a1"), 404, "not_found")


async def test_bounded_cache_still_shows_this_process_own_writes(sid, A, module_database_url):
    """CACHE_MODE=bounded skips the database on a hit; the process's own writes must still
    show at once (they drop the entry)."""
    settings = make_settings(cache_mode="bounded")
    async with app_client(create_app(settings, dsn=module_database_url)) as http:
        http.event_hooks["response"].append(checked)
        await make_session(http, sid)
        await make_agent(http, A)
        writes = (
            (1, lambda: http.post(f"{A}/a1/messages", json=message(0))),
            (
                4,
                lambda: http.post(
                    f"{A}/a1/messages/batch", json={"messages": [message(i) for i in (1, 2, 3)]}
                ),
            ),
            (3, lambda: http.delete(f"{A}/a1/messages/3")),
        )
        for expected, write in writes:
            assert (await http.get(f"{A}/a1")).status_code == 200  # fill the cache
            assert (await write()).status_code in (201, 204)
            for _ in range(2):
                assert (await http.get(f"{A}/a1")).json()["message_count"] == expected
