"""A message list as one stream (docs/api.md "Streaming a message list"): with
`Accept: application/x-ndjson`, every message from the position on, one per line, the same
objects as the pages' items, in the same order; `limit` caps it when given; errors before the
first line are the usual envelopes; `Accept` decides, ties going to the JSON page."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.contract import S, error, make_session

NDJSON = {"Accept": "application/x-ndjson"}
COUNT = 2345  # three reads of 1,000: two full, one short


async def history(api: httpx.AsyncClient, sid: str, count: int = COUNT, agent: str = "a") -> str:
    """An agent with `count` messages (`message_id` 0..count-1); its messages path."""
    r = await api.post(
        f"{S}/{sid}/agents", json={"agent_id": agent, "state": {}, "conversation_manager_state": {}}
    )
    assert r.status_code == 201, r.text
    path = f"{S}/{sid}/agents/{agent}/messages"
    for start in range(0, count, 1000):
        batch = [
            {
                "message_id": i,
                "message": {"role": "user", "content": [{"text": f"m{i}", "n": 2**70 + i}]},
                "redact_message": {"role": "user", "content": []} if i % 7 == 0 else None,
            }
            for i in range(start, min(start + 1000, count))
        ]
        r = await api.post(f"{path}/batch", json={"messages": batch})
        assert r.status_code == 201, r.text
    return path


def same(value: object) -> str:
    """A value as text that keeps key order and integers of any size: to compare by."""
    return json.dumps(value, separators=(",", ":"))


def parsed(lines: list[bytes]) -> list[str]:
    return [same(json.loads(line)) for line in lines]


async def paged(api: httpx.AsyncClient, path: str, **params: object) -> list[str]:
    """Every item of the JSON pages (1,000 a page), as `same` gives it."""
    items: list[str] = []
    query: dict[str, object] = {**params, "limit": 1000}
    while True:
        r = await api.get(path, params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        items.extend(same(item) for item in json.loads(r.content)["items"])
        if page["next_cursor"] is None:
            return items
        query = {k: v for k, v in query.items() if k != "offset"} | {"cursor": page["next_cursor"]}


def lines(r: httpx.Response) -> list[bytes]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    assert r.content.endswith(b"\n") or r.content == b""
    return r.content.splitlines()


async def test_the_stream_is_the_pages_items_line_by_line(api, sid):
    await make_session(api, sid)
    path = await history(api, sid)
    streamed = lines(await api.get(path, headers=NDJSON))
    assert len(streamed) == COUNT
    # What the pages hold, key order and integers beyond 64 bits included.
    assert parsed(streamed) == await paged(api, path)
    assert b'"n":1180591620717411303425' in streamed[1]  # 2**70 + 1, as written
    for order in ("asc", "desc"):
        for offset in (0, 1, 999, 1000, 2344, 2345, 5000):
            got = lines(
                await api.get(path, params={"order": order, "offset": offset}, headers=NDJSON)
            )
            want = await paged(api, path, order=order, offset=offset)
            assert parsed(got) == want, (order, offset)


async def test_limit_caps_the_stream_and_a_cursor_starts_it(api, sid):
    await make_session(api, sid)
    path = await history(api, sid, count=2000)  # a multiple of the read size
    assert len(lines(await api.get(path, headers=NDJSON))) == 2000
    for limit, offset, want in ((1, 0, [0]), (5, 1998, [1998, 1999]), (1000, 999, None)):
        r = await api.get(path, params={"limit": limit, "offset": offset}, headers=NDJSON)
        ids = [json.loads(line)["message_id"] for line in lines(r)]
        assert ids == (want if want is not None else list(range(999, 1999)))
    first = (await api.get(path, params={"limit": 10})).json()
    r = await api.get(path, params={"cursor": first["next_cursor"]}, headers=NDJSON)
    assert [json.loads(line)["message_id"] for line in lines(r)] == list(range(10, 2000))


async def test_errors_come_before_the_first_line_in_the_envelope(api, sid):
    await make_session(api, sid)
    path = await history(api, sid, count=3)
    error(await api.get(f"{S}/{sid}/agents/nobody/messages", headers=NDJSON), 404, "not_found")
    error(await api.get(f"{S}/{sid}x/agents/a/messages", headers=NDJSON), 404, "not_found")
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"cursor": "forged"}):
        error(await api.get(path, params=params, headers=NDJSON), 422, "invalid_request")
    # An agent without messages streams nothing (no line), as its page has no items.
    await history(api, sid, count=0, agent="empty")
    assert lines(await api.get(f"{S}/{sid}/agents/empty/messages", headers=NDJSON)) == []


@pytest.mark.parametrize(
    ("accept", "streams"),
    [
        ("application/x-ndjson", True),
        ("application/x-ndjson, application/json;q=0.9", True),
        ("application/json;q=0.5, application/x-ndjson;q=0.8", True),
        ("application/x-ndjson;q=0.1, */*;q=0.05", True),
        ("application/json, application/x-ndjson", False),  # a tie: the JSON page
        ("application/x-ndjson;q=0.5, application/*", False),
        ("application/x-ndjson;q=0, application/json;q=0", False),
        ("application/x-ndjson;q=nonsense", False),
        ("*/*", False),
        ("application/json", False),
        (None, False),
    ],
)
async def test_accept_decides_between_the_page_and_the_stream(api, sid, accept, streams):
    await make_session(api, sid)
    path = await history(api, sid, count=3)
    r = await api.get(path, headers={"Accept": accept} if accept else {})
    assert r.status_code == 200
    if streams:
        assert len(lines(r)) == 3
    else:
        assert r.headers["content-type"] == "application/json"
        assert [m["message_id"] for m in r.json()["items"]] == [0, 1, 2]


async def test_the_openapi_document_names_both_answers(api):
    spec = (await api.get("/openapi.json")).json()
    answer = spec["paths"][f"{S}/{{session_id}}/agents/{{agent_id}}/messages"]["get"]["responses"]
    assert set(answer["200"]["content"]) == {"application/json", "application/x-ndjson"}
