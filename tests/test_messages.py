"""Messages over HTTP (API.md): append one (retry-safe), append a batch (all or nothing), read,
replace, delete, list (limit, keyset cursor, offset, order), versions; the error envelope and
X-Request-ID on every answer."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.contract import S, error, make_session, utc


@pytest.fixture
def A(sid: str) -> str:
    """The agents collection of this test's session."""
    return f"{S}/{sid}/agents"


async def make_agent(api: httpx.AsyncClient, base: str, aid: str = "a1") -> None:
    r = await api.post(base, json={"agent_id": aid, "state": {}, "conversation_manager_state": {}})
    assert r.status_code == 201, r.text


@pytest.fixture
async def M(api: httpx.AsyncClient, sid: str, A: str) -> str:
    """The messages collection of agent `a1` in this test's (created) session."""
    await make_session(api, sid)
    await make_agent(api, A)
    return f"{A}/a1/messages"


def msg(i: int, text: str | None = None, **extra: object) -> dict:
    """A create body as Strands sends it (SessionMessage.to_dict())."""
    body: dict = {
        "message_id": i,
        "message": {
            "role": "user" if i % 2 == 0 else "assistant",
            "content": [{"text": text if text is not None else f"m{i}"}],
        },
        "redact_message": None,
    }
    body.update(extra)
    return body


async def ids(api: httpx.AsyncClient, url: str, **params: object) -> list[int]:
    r = await api.get(url, params=params)
    assert r.status_code == 200, r.text
    return [m["message_id"] for m in r.json()["items"]]


async def batch(api: httpx.AsyncClient, url: str, messages: list[dict]) -> httpx.Response:
    return await api.post(f"{url}/batch", json={"messages": messages})


# --- create one --------------------------------------------------------------------------------


async def test_create_answers_201_with_location_etag_and_the_body_a_get_returns(api, M):
    r = await api.post(M, json=msg(0))
    assert r.status_code == 201
    assert r.headers["location"] == f"{M}/0"
    assert r.headers["etag"] == f'"{r.json()["version"]}"'
    body = r.json()
    assert body["message_id"] == 0
    assert body["message"] == {"role": "user", "content": [{"text": "m0"}]}
    assert body["redact_message"] is None
    assert utc(body["created_at"]) == utc(body["updated_at"])
    got = await api.get(r.headers["location"])
    assert (
        got.status_code == 200 and got.json() == body and got.headers["etag"] == r.headers["etag"]
    )


async def test_redact_message_may_be_left_out_null_or_a_message(api, M):
    plain = {"message_id": 0, "message": {"role": "user", "content": []}}
    assert (await api.post(M, json=plain)).json()["redact_message"] is None
    redact = {"role": "user", "content": [{"text": "[redacted]"}]}
    r = await api.post(M, json=msg(1, redact_message=redact))
    assert r.status_code == 201 and r.json()["redact_message"] == redact
    assert (await api.get(f"{M}/1")).json()["redact_message"] == redact


async def test_client_timestamps_are_ignored(api, M):
    r = await api.post(
        M,
        json=msg(0, created_at="1999-01-01T00:00:00+00:00", updated_at="1999-01-01T00:00:00+00:00"),
    )
    assert r.status_code == 201
    assert not r.json()["created_at"].startswith("1999")
    assert not r.json()["updated_at"].startswith("1999")


async def test_identical_repeat_answers_200_with_the_stored_resource(api, M):
    first = (await api.post(M, json=msg(0))).json()
    again = await api.post(M, json=msg(0, created_at="2001-01-01T00:00:00+00:00"))
    assert again.status_code == 200
    assert again.json() == first
    assert again.headers["etag"] == f'"{first["version"]}"'
    assert await ids(api, M) == [0]


@pytest.mark.parametrize(
    "other",
    [
        msg(0, "different text"),
        msg(0, redact_message={"role": "user", "content": [{"text": "[redacted]"}]}),
        {"message_id": 0, "message": {"role": "assistant", "content": [{"text": "m0"}]}},
        msg(0) | {"message": {"role": "user", "content": [{"text": "m0"}], "tracking_id": "t-1"}},
    ],
)
async def test_different_content_with_the_same_id_is_409_and_keeps_the_stored_one(api, M, other):
    first = (await api.post(M, json=msg(0))).json()
    error(await api.post(M, json=other), 409, "conflict")
    assert (await api.get(f"{M}/0")).json() == first


async def test_create_under_a_missing_agent_or_session_is_404(api, sid, A, M):
    error(await api.post(f"{A}/ghost/messages", json=msg(0)), 404, "not_found")
    error(await api.post(f"{S}/{sid}-missing/agents/a1/messages", json=msg(0)), 404, "not_found")
    error(await api.get(f"{A}/ghost"), 404, "not_found")
    error(await api.get(f"{S}/{sid}-missing"), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"message_id": 0, "message": {"role": "system", "content": []}}, ["message", "role"]),
        ({"message_id": 0, "message": {"role": "tool", "content": []}}, ["message", "role"]),
        ({"message_id": 0, "message": {"content": []}}, ["message", "role"]),
        ({"message_id": 0, "message": {"role": None, "content": []}}, ["message", "role"]),
        ({"message_id": 0, "message": {"role": "user"}}, ["message", "content"]),
        ({"message_id": 0, "message": {"role": "user", "content": "hi"}}, ["message", "content"]),
        (
            {"message_id": 0, "message": {"role": "user", "content": {"text": "hi"}}},
            ["message", "content"],
        ),
        ({"message_id": 0, "message": {"role": "user", "content": ["hi"]}}, ["message", "content"]),
        (
            {"message_id": 0, "message": {"role": "user", "content": [{"text": "a"}, 3]}},
            ["message", "content"],
        ),
        ({"message_id": 0, "message": "hello"}, ["message"]),
        ({"message_id": 0, "message": [{"role": "user", "content": []}]}, ["message"]),
        ({"message_id": 0}, ["message"]),
        (
            {
                "message_id": 0,
                "message": {"role": "user", "content": []},
                "redact_message": {"role": "system", "content": []},
            },
            ["redact_message", "role"],
        ),
        (
            {"message_id": 0, "message": {"role": "user", "content": []}, "redact_message": "x"},
            ["redact_message"],
        ),
        (
            {"message_id": 0, "message": {"role": "user", "content": []}, "redact_message": [1]},
            ["redact_message"],
        ),
    ],
)
async def test_invalid_messages_are_422_naming_the_field(api, M, body, words):
    error(await api.post(M, json=body), 422, "invalid_request", *words)
    assert await ids(api, M) == []


async def test_extra_keys_are_kept_in_order(api, M):
    message = {
        "content": [
            {"toolUse": {"toolUseId": "t1", "name": "calc", "input": {"z": 1, "a": [3, 2, 1]}}},
            {"text": "x", "citations": None},
        ],
        "role": "assistant",
        "tracking_id": "trk-42",
        "metadata": {
            "usage": {"outputTokens": 5, "inputTokens": 9},
            "latencyMs": 12,
            "custom": {"b": 1, "a": 2},
        },
    }
    r = await api.post(M, json={"message_id": 0, "message": message})
    assert r.status_code == 201
    for body in (r.json(), (await api.get(f"{M}/0")).json(), (await api.get(M)).json()["items"][0]):
        stored = body["message"]
        assert stored == message
        assert list(stored) == ["content", "role", "tracking_id", "metadata"]
        assert list(stored["metadata"]) == ["usage", "latencyMs", "custom"]
        assert list(stored["metadata"]["usage"]) == ["outputTokens", "inputTokens"]
        assert list(stored["content"][0]["toolUse"]["input"]) == ["z", "a"]
        assert list(stored["content"][1]) == ["text", "citations"]


async def test_message_values_come_back_exactly(api, M):
    message = {
        "role": "user",
        "content": [
            {"text": "nul\u0000here \U0001f600 \u00e9"},
            {
                "toolResult": {
                    "toolUseId": "t",
                    "status": "success",
                    "content": [
                        {
                            "json": {
                                "big": 2**63 - 1,
                                "neg": -(2**63),
                                "beyond": 2**53 + 1,
                                "f": 0.1,
                                "e": 1e-300,
                            }
                        }
                    ],
                }
            },
            {
                "image": {
                    "format": "png",
                    "source": {"bytes": {"__bytes_encoded__": True, "data": "iVBORw0KGgo="}},
                }
            },
        ],
    }
    r = await api.post(M, json={"message_id": 0, "message": message})
    assert r.status_code == 201
    got = (await api.get(f"{M}/0")).json()["message"]
    assert got == message
    assert got["content"][0]["text"] == "nul\u0000here \U0001f600 \u00e9"
    inner = got["content"][1]["toolResult"]["content"][0]["json"]
    assert isinstance(inner["big"], int) and inner["big"] == 2**63 - 1
    assert inner["beyond"] == 2**53 + 1
    # the identical repeat compares the very same values
    assert (await api.post(M, json={"message_id": 0, "message": message})).status_code == 200


async def test_nan_is_refused(api, M):
    raw = b'{"message_id": 0, "message": {"role": "user", "content": [{"n": NaN}]}}'
    r = await api.post(M, content=raw, headers={"Content-Type": "application/json"})
    error(r, 422, "invalid_request")
    r = await api.post(M, content=b"x", headers={"Content-Type": "text/plain"})
    error(r, 415, "unsupported_media_type")
    assert await ids(api, M) == []


# --- message_id bounds --------------------------------------------------------------------------


async def test_message_id_bounds_in_the_body(api, M):
    assert (await api.post(M, json=msg(0))).status_code == 201
    top = await api.post(M, json=msg(2147483647))
    assert top.status_code == 201 and top.json()["message_id"] == 2147483647
    assert top.headers["location"] == f"{M}/2147483647"
    for bad in (-1, 2147483648, 2**63, 10**30, -(2**31)):
        error(await api.post(M, json=msg(bad)), 422, "invalid_id", "message_id")
        error(await batch(api, M, [msg(5), msg(bad)]), 422, "invalid_id", "message_id")
    for bad in ("abc", 1.5, None, [1]):
        r = await api.post(M, json=msg(0) | {"message_id": bad})
        assert r.status_code == 422, (bad, r.text)
    missing = await api.post(M, json={"message": {"role": "user", "content": []}})
    assert missing.status_code == 422
    assert "message_id" in missing.json()["error"]["message"]
    assert await ids(api, M) == [0, 2147483647]


async def test_message_id_bounds_in_the_path(api, M):
    await api.post(M, json=msg(2147483647))
    assert (await api.get(f"{M}/2147483647")).status_code == 200
    error(await api.get(f"{M}/0"), 404, "not_found")
    for bad in ("-1", "2147483648", "9223372036854775808", "99999999999999999999999"):
        error(await api.get(f"{M}/{bad}"), 422, "invalid_id", "message_id")
        error(
            await api.put(f"{M}/{bad}", json={"message": {"role": "user", "content": []}}),
            422,
            "invalid_id",
            "message_id",
        )
        error(await api.delete(f"{M}/{bad}"), 422, "invalid_id", "message_id")
    for bad in ("abc", "1.5", "%20"):
        r = await api.get(f"{M}/{bad}")
        assert r.status_code == 422, (bad, r.status_code, r.text)


async def test_message_ids_belong_to_their_agent(api, sid, A, M):
    await make_agent(api, A, "a2")
    await api.post(M, json=msg(0, "for a1"))
    r = await api.post(f"{A}/a2/messages", json=msg(0, "for a2"))
    assert r.status_code == 201
    assert (await api.get(f"{M}/0")).json()["message"]["content"] == [{"text": "for a1"}]
    assert (await api.get(f"{A}/a2/messages/0")).json()["message"]["content"] == [
        {"text": "for a2"}
    ]


# --- read, replace, delete ---------------------------------------------------------------------


async def test_read_missing_message_agent_or_session_is_404(api, sid, A, M):
    error(await api.get(f"{M}/0"), 404, "not_found")
    await api.post(M, json=msg(0))
    error(await api.get(f"{A}/ghost/messages/0"), 404, "not_found")
    error(await api.get(f"{S}/{sid}-missing/agents/a1/messages/0"), 404, "not_found")


async def test_put_sets_message_and_redaction_keeps_created_at_bumps_version(api, M):
    created = (await api.post(M, json=msg(0, tracking_id="x"))).json()
    new = {
        "message": {"role": "user", "content": [{"text": "secret"}], "tracking_id": "t"},
        "redact_message": {"role": "user", "content": [{"text": "[redacted]"}]},
        "created_at": "1999-01-01T00:00:00+00:00",
    }
    r = await api.put(f"{M}/0", json=new)
    assert r.status_code == 200
    assert r.json()["version"] > created["version"]
    assert r.headers["etag"] == f'"{r.json()["version"]}"'
    body = r.json()
    assert body["message_id"] == 0
    assert body["message"] == new["message"]
    assert body["redact_message"] == new["redact_message"]
    assert body["created_at"] == created["created_at"]
    assert utc(body["updated_at"]) >= utc(created["updated_at"])
    got = await api.get(f"{M}/0")
    assert got.json() == body and got.headers["etag"] == r.headers["etag"]
    # a PUT is the whole message: leaving redact_message out clears it
    cleared = await api.put(f"{M}/0", json={"message": {"role": "user", "content": []}})
    assert cleared.status_code == 200 and cleared.json()["redact_message"] is None
    assert cleared.json()["version"] > body["version"]
    assert cleared.json()["created_at"] == created["created_at"]


async def test_put_body_id_must_match_the_path(api, M):
    await api.post(M, json=msg(0))
    await api.post(M, json=msg(1))
    error(await api.put(f"{M}/0", json=msg(1, "moved")), 422, "invalid_id", "message_id")
    assert (await api.get(f"{M}/1")).json()["message"]["content"] == [{"text": "m1"}]
    assert (await api.get(f"{M}/0")).json()["message"]["content"] == [{"text": "m0"}]
    same = await api.put(f"{M}/0", json=msg(0, "edited"))
    assert same.status_code == 200 and same.json()["message"]["content"] == [{"text": "edited"}]
    error(await api.put(f"{M}/0", json=msg(-1)), 422, "invalid_id")


async def test_put_never_creates(api, sid, A, M):
    body = {"message": {"role": "user", "content": []}}
    error(await api.put(f"{M}/0", json=body), 404, "not_found")
    error(await api.get(f"{M}/0"), 404, "not_found")
    error(await api.put(f"{A}/ghost/messages/0", json=body), 404, "not_found")
    error(await api.put(f"{S}/{sid}-missing/agents/a1/messages/0", json=body), 404, "not_found")
    assert await ids(api, M) == []
    assert (await api.get(f"{A}/a1")).json()["message_count"] == 0


async def test_put_validates_like_post(api, M):
    created = (await api.post(M, json=msg(0))).json()
    error(
        await api.put(f"{M}/0", json={"message": {"role": "system", "content": []}}),
        422,
        "invalid_request",
        "role",
    )
    error(
        await api.put(f"{M}/0", json={"message": {"role": "user", "content": "x"}}),
        422,
        "invalid_request",
        "content",
    )
    error(await api.put(f"{M}/0", json={"redact_message": None}), 422, "invalid_request", "message")
    error(
        await api.put(
            f"{M}/0",
            json={
                "message": {"role": "user", "content": []},
                "redact_message": {"role": "x", "content": []},
            },
        ),
        422,
        "invalid_request",
        "redact_message",
    )
    got = await api.get(f"{M}/0")
    assert got.json() == created and got.headers["etag"] == f'"{created["version"]}"'


async def test_delete_answers_204_then_404(api, sid, A, M):
    old = (await batch(api, M, [msg(0), msg(1), msg(2)])).json()["items"][1]["version"]
    r = await api.delete(f"{M}/1")
    assert r.status_code == 204 and r.content == b""
    error(await api.get(f"{M}/1"), 404, "not_found")
    error(await api.delete(f"{M}/1"), 404, "not_found")
    assert await ids(api, M) == [0, 2]
    error(await api.delete(f"{A}/ghost/messages/0"), 404, "not_found")
    error(await api.delete(f"{S}/{sid}-missing/agents/a1/messages/0"), 404, "not_found")
    # the id is free again
    again = await api.post(M, json=msg(1, "new"))
    assert again.status_code == 201 and again.json()["version"] > old  # never an old ETag


async def test_if_match_and_if_none_match(api, M):
    v1 = (await api.post(M, json=msg(0))).headers["etag"]
    body = {"message": {"role": "user", "content": [{"text": "v2"}]}}
    error(
        await api.put(f"{M}/0", json=body, headers={"If-Match": '"1234567"'}),
        412,
        "precondition_failed",
    )
    error(
        await api.put(f"{M}/0", json=body, headers={"If-Match": "nonsense"}),
        412,
        "precondition_failed",
    )
    ok = await api.put(f"{M}/0", json=body, headers={"If-Match": v1})
    assert ok.status_code == 200
    v2 = ok.headers["etag"]
    error(
        await api.put(f"{M}/0", json=msg(0), headers={"If-Match": v1}),
        412,
        "precondition_failed",
    )
    assert (await api.get(f"{M}/0")).json()["message"] == body["message"]

    nm = await api.get(f"{M}/0", headers={"If-None-Match": v2})
    assert nm.status_code == 304 and nm.content == b"" and nm.headers["etag"] == v2
    assert (await api.get(f"{M}/0", headers={"If-None-Match": f"{v1}, {v2}"})).status_code == 304
    assert (await api.get(f"{M}/0", headers={"If-None-Match": "*"})).status_code == 304
    fresh = await api.get(f"{M}/0", headers={"If-None-Match": v1})
    assert fresh.status_code == 200 and fresh.json()["message"] == body["message"]

    error(await api.delete(f"{M}/0", headers={"If-Match": v1}), 412, "precondition_failed")
    assert (await api.get(f"{M}/0")).status_code == 200
    assert (await api.delete(f"{M}/0", headers={"If-Match": v2})).status_code == 204
    error(await api.put(f"{M}/0", json=body, headers={"If-Match": v2}), 404, "not_found")
    error(await api.delete(f"{M}/0", headers={"If-Match": v2}), 404, "not_found")


async def test_concurrent_identical_creates_store_one_message(api, M):
    answers = await asyncio.gather(*(api.post(M, json=msg(0)) for _ in range(8)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 7 + [201], statuses
    assert len({r.text for r in answers}) == 1
    different = await asyncio.gather(*(api.post(M, json=msg(1, f"v{i}")) for i in range(8)))
    assert sorted(r.status_code for r in different) == [201] + [409] * 7
    assert await ids(api, M) == [0, 1]


# --- batch -------------------------------------------------------------------------------------


async def test_batch_answers_201_with_the_stored_messages(api, A, M):
    sent = [
        msg(0),
        msg(1, redact_message={"role": "assistant", "content": []}),
        msg(2, tracking_id="ignored-top-level"),
    ]
    r = await batch(api, M, sent)
    assert r.status_code == 201
    items = r.json()["items"]
    assert [m["message_id"] for m in items] == [0, 1, 2]
    for item in items:
        assert item == (await api.get(f"{M}/{item['message_id']}")).json()
    assert items[1]["redact_message"] == {"role": "assistant", "content": []}
    assert (await api.get(f"{A}/a1")).json()["message_count"] == 3


async def test_identical_repeat_of_a_batch_answers_200(api, M):
    sent = [msg(i) for i in range(5)]
    first = await batch(api, M, sent)
    assert first.status_code == 201
    again = await batch(api, M, [m | {"created_at": "1999-01-01T00:00:00+00:00"} for m in sent])
    assert again.status_code == 200
    assert again.json()["items"] == first.json()["items"]
    assert await ids(api, M) == [0, 1, 2, 3, 4]
    # a batch overlapping identically with stored messages and adding new ones: created
    more = await batch(api, M, [msg(i) for i in range(3, 8)])
    assert more.status_code == 201
    assert [m["message_id"] for m in more.json()["items"]] == [3, 4, 5, 6, 7]
    assert await ids(api, M) == list(range(8))


async def test_batch_is_all_or_nothing_on_a_conflict(api, A, M):
    stored = (await api.post(M, json=msg(2, "original"))).json()
    r = await batch(api, M, [msg(0), msg(1), msg(2, "different"), msg(3)])
    error(r, 409, "conflict")
    assert await ids(api, M) == [2]
    assert (await api.get(f"{M}/2")).json() == stored
    for i in (0, 1, 3):
        error(await api.get(f"{M}/{i}"), 404, "not_found")
    assert (await api.get(f"{A}/a1")).json()["message_count"] == 1


async def test_batch_is_all_or_nothing_on_an_invalid_item(api, M):
    bad = {"message_id": 1, "message": {"role": "system", "content": []}}
    # the message names the item as well as the field
    error(await batch(api, M, [msg(0), bad, msg(2)]), 422, "invalid_request", "messages.1", "role")
    bad_content = {"message_id": 1, "message": {"role": "user", "content": "x"}}
    error(await batch(api, M, [msg(0), bad_content, msg(2)]), 422, "invalid_request", "content")
    error(await batch(api, M, [msg(0), "not an object"]), 422, "invalid_request")
    assert await ids(api, M) == []


async def test_batch_with_duplicate_ids_is_422_and_stores_nothing(api, M):
    error(await batch(api, M, [msg(0), msg(1), msg(0)]), 422, "invalid_request")
    error(await batch(api, M, [msg(0), msg(0, "other")]), 422, "invalid_request")
    assert await ids(api, M) == []


async def test_batch_size_bounds(api, A, M):
    error(await batch(api, M, []), 422, "invalid_request", "messages")
    error(await batch(api, M, [msg(i) for i in range(1001)]), 422, "invalid_request", "messages")
    error(await api.post(f"{M}/batch", json={}), 422, "invalid_request", "messages")
    error(
        await api.post(f"{M}/batch", json={"messages": msg(0)}), 422, "invalid_request", "messages"
    )
    error(await api.post(f"{M}/batch", json=[msg(0)]), 422, "invalid_request")
    assert await ids(api, M) == []
    full = await batch(api, M, [msg(i) for i in range(1000)])
    assert full.status_code == 201 and len(full.json()["items"]) == 1000
    page = (await api.get(M, params={"limit": 1000})).json()
    assert [m["message_id"] for m in page["items"]] == list(range(1000))
    assert page["next_cursor"] is None
    assert (await api.get(f"{A}/a1")).json()["message_count"] == 1000


async def test_batch_to_a_missing_agent_or_session_is_404(api, sid, A, M):
    error(await batch(api, f"{A}/ghost/messages", [msg(0)]), 404, "not_found")
    error(await batch(api, f"{S}/{sid}-missing/agents/a1/messages", [msg(0)]), 404, "not_found")
    error(await api.get(f"{A}/ghost"), 404, "not_found")


# --- list --------------------------------------------------------------------------------------


async def test_list_of_an_agent_without_messages_and_of_missing_parents(api, sid, A, M):
    r = await api.get(M)
    assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}
    error(await api.get(f"{A}/ghost/messages"), 404, "not_found")
    error(await api.get(f"{S}/{sid}-missing/agents/a1/messages"), 404, "not_found")
    for params in ({"offset": 5}, {"order": "desc"}, {"limit": 1}):
        error(await api.get(f"{A}/ghost/messages", params=params), 404, "not_found")
        assert (await api.get(M, params=params)).json() == {"items": [], "next_cursor": None}


async def test_list_is_ordered_by_message_id_and_items_equal_reads(api, M):
    for i in (5, 1, 3, 0, 10, 2):
        assert (await api.post(M, json=msg(i))).status_code == 201
    r = await api.get(M)
    assert r.status_code == 200
    page = r.json()
    assert set(page) == {"items", "next_cursor"} and page["next_cursor"] is None
    assert [m["message_id"] for m in page["items"]] == [0, 1, 2, 3, 5, 10]
    for item in page["items"]:
        assert item == (await api.get(f"{M}/{item['message_id']}")).json()


async def test_list_limit_defaults_to_100_and_is_bounded(api, M):
    await batch(api, M, [msg(i) for i in range(150)])
    first = (await api.get(M)).json()
    assert [m["message_id"] for m in first["items"]] == list(range(100))
    assert first["next_cursor"]
    rest = (await api.get(M, params={"cursor": first["next_cursor"]})).json()
    assert [m["message_id"] for m in rest["items"]] == list(range(100, 150))
    assert rest["next_cursor"] is None
    for limit in (0, -1, 1001, "ten"):
        error(await api.get(M, params={"limit": limit}), 422, "invalid_request", "limit")
    assert len((await api.get(M, params={"limit": 1000})).json()["items"]) == 150
    assert await ids(api, M, limit=1) == [0]


async def test_cursor_pages_cover_everything_once(api, M):
    await batch(api, M, [msg(i) for i in range(10)])
    seen, cursor, pages = [], None, 0
    while True:
        body = (
            await api.get(M, params={"limit": 3} | ({"cursor": cursor} if cursor else {}))
        ).json()
        seen += [m["message_id"] for m in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(10)) and pages == 4
    # an exactly full last page ends with a null cursor, not an empty extra page
    first = (await api.get(M, params={"limit": 5})).json()
    second = (await api.get(M, params={"limit": 5, "cursor": first["next_cursor"]})).json()
    assert [m["message_id"] for m in second["items"]] == [5, 6, 7, 8, 9]
    assert second["next_cursor"] is None


async def test_cursor_pages_neither_repeat_nor_skip_when_messages_change_between_pages(api, M):
    await batch(api, M, [msg(i) for i in range(0, 20, 2)])  # 0, 2, …, 18
    first = (await api.get(M, params={"limit": 4})).json()
    assert [m["message_id"] for m in first["items"]] == [0, 2, 4, 6]
    # inserts before and after the page boundary, and a delete of an already listed message
    await batch(api, M, [msg(1), msg(3), msg(9), msg(25)])
    assert (await api.delete(f"{M}/0")).status_code == 204
    second = (await api.get(M, params={"limit": 4, "cursor": first["next_cursor"]})).json()
    assert [m["message_id"] for m in second["items"]] == [8, 9, 10, 12]
    await api.post(M, json=msg(13))
    third = (await api.get(M, params={"limit": 100, "cursor": second["next_cursor"]})).json()
    assert [m["message_id"] for m in third["items"]] == [13, 14, 16, 18, 25]
    assert third["next_cursor"] is None


async def test_offset_skips_the_oldest_messages(api, M):
    await batch(api, M, [msg(i) for i in (0, 1, 2, 5, 7, 8, 9)])
    assert await ids(api, M, offset=0) == [0, 1, 2, 5, 7, 8, 9]
    assert await ids(api, M, offset=2) == [2, 5, 7, 8, 9]  # skips messages, not ids
    assert await ids(api, M, offset=4) == [7, 8, 9]
    assert await ids(api, M, offset=6) == [9]
    assert await ids(api, M, offset=7) == []
    assert (await api.get(M, params={"offset": 1000})).json() == {"items": [], "next_cursor": None}
    assert await ids(api, M, offset=2, limit=2) == [2, 5]
    for bad in (-1, "x", 1.5):
        error(await api.get(M, params={"offset": bad}), 422, "invalid_request", "offset")


async def test_offset_with_limit_pages_through_the_rest_following_next_cursor(api, M):
    """Strands' restore: list_messages(offset=N) — the first page skips N, then the cursor."""
    await batch(api, M, [msg(i) for i in range(10)])
    first = (await api.get(M, params={"offset": 3, "limit": 3})).json()
    assert [m["message_id"] for m in first["items"]] == [3, 4, 5]
    assert first["next_cursor"]
    second = (await api.get(M, params={"limit": 3, "cursor": first["next_cursor"]})).json()
    assert [m["message_id"] for m in second["items"]] == [6, 7, 8]
    third = (await api.get(M, params={"limit": 3, "cursor": second["next_cursor"]})).json()
    assert [m["message_id"] for m in third["items"]] == [9]
    assert third["next_cursor"] is None
    # limit reaching exactly the end after the offset: no cursor
    exact = (await api.get(M, params={"offset": 7, "limit": 3})).json()
    assert [m["message_id"] for m in exact["items"]] == [7, 8, 9]
    assert exact["next_cursor"] is None


async def test_offset_repeated_with_the_cursor_does_not_skip_again(api, M):
    """A client that keeps its query (offset=N) and adds the cursor, as for every other filter,
    gets the same list — the messages after the N oldest — without gaps; a service that will
    not combine the two may refuse with 422, but must never silently skip messages."""
    await batch(api, M, [msg(i) for i in range(10)])
    seen, cursor = [], None
    for _ in range(10):
        params = {"offset": 3, "limit": 3} | ({"cursor": cursor} if cursor else {})
        r = await api.get(M, params=params)
        if cursor is not None and r.status_code == 422:
            error(r, 422, "invalid_request", "offset")
            return
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [m["message_id"] for m in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(3, 10))


async def test_order_desc(api, M):
    await batch(api, M, [msg(i) for i in range(7)])
    assert await ids(api, M, order="desc") == [6, 5, 4, 3, 2, 1, 0]
    assert await ids(api, M, order="asc") == list(range(7))
    seen, cursor = [], None
    while True:
        body = (
            await api.get(
                M, params={"order": "desc", "limit": 3} | ({"cursor": cursor} if cursor else {})
            )
        ).json()
        seen += [m["message_id"] for m in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [6, 5, 4, 3, 2, 1, 0]
    for bad in ("DESCENDING", "up", ""):
        error(await api.get(M, params={"order": bad}), 422, "invalid_request", "order")


async def test_cursors_only_work_for_the_list_that_issued_them(api, sid, A, M):
    await make_agent(api, A, "a2")
    other = f"{A}/a2/messages"
    await batch(api, M, [msg(i) for i in range(5)])
    await batch(api, other, [msg(i) for i in range(5)])
    cursor = (await api.get(M, params={"limit": 2})).json()["next_cursor"]
    assert await ids(api, M, cursor=cursor) == [2, 3, 4]
    # another agent's list
    error(await api.get(other, params={"cursor": cursor}), 422, "invalid_request")
    # the same agent in another session
    await make_session(api, f"{sid}-2")
    await make_agent(api, f"{S}/{sid}-2/agents", "a1")
    error(
        await api.get(f"{S}/{sid}-2/agents/a1/messages", params={"cursor": cursor}),
        422,
        "invalid_request",
    )
    # the agents list's cursor, and the other order's
    agents_cursor = (await api.get(A, params={"limit": 1})).json()["next_cursor"]
    error(await api.get(M, params={"cursor": agents_cursor}), 422, "invalid_request")
    desc_cursor = (await api.get(M, params={"limit": 2, "order": "desc"})).json()["next_cursor"]
    error(await api.get(M, params={"cursor": desc_cursor}), 422, "invalid_request")
    # garbled and forged
    for garbled in ("garbage", "!!!", "A" * 30, cursor[:-4], cursor + "Zm9v", "%00"):
        error(await api.get(M, params={"cursor": garbled}), 422, "invalid_request")
    forged = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    error(await api.get(M, params={"cursor": forged}), 422, "invalid_request")
