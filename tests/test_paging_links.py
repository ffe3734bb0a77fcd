"""`Link: <...>; rel="next"` on list pages (RFC 8288, docs/api.md "Paging"): every page with a
next one names it, as this request's path and query with the next cursor (offset dropped);
the last page has no Link; following it gives what `next_cursor` gives."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from tests.contract import S, make_session


def next_url(response: httpx.Response) -> str | None:
    """The target of the answer's rel="next" link, checked to be one link of that form."""
    value = response.headers.get("link")
    if value is None:
        return None
    assert value.startswith("<") and value.endswith('>; rel="next"'), value
    return value[1 : -len('>; rel="next"')]


def follow(api_path: str, response: httpx.Response) -> tuple[str, dict[str, str]]:
    """(path, query) of the next link, checked against the body's `next_cursor`."""
    url = next_url(response)
    assert url is not None
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    assert parts.path == api_path and query["cursor"] == response.json()["next_cursor"]
    return parts.path, query


async def test_message_pages_link_to_the_next_until_the_last(api, sid):
    await make_session(api, sid)
    agents = f"{S}/{sid}/agents"
    r = await api.post(
        agents, json={"agent_id": "a1", "state": {}, "conversation_manager_state": {}}
    )
    assert r.status_code == 201
    messages = f"{agents}/a1/messages"
    body = {
        "messages": [
            {"message_id": i, "message": {"role": "user", "content": []}} for i in range(7)
        ]
    }
    assert (await api.post(f"{messages}/batch", json=body)).status_code == 201

    first = await api.get(messages, params={"limit": 3, "offset": 1, "order": "asc"})
    path, query = follow(messages, first)
    assert query == {"limit": "3", "order": "asc", "cursor": first.json()["next_cursor"]}
    second = await api.get(path, params=query)
    assert [m["message_id"] for m in second.json()["items"]] == [4, 5, 6]
    assert second.json()["next_cursor"] is None and "link" not in second.headers
    # The same from the newest, and with nothing after the first page.
    newest = await api.get(messages, params={"limit": 4, "order": "desc"})
    path, query = follow(messages, newest)
    assert query["order"] == "desc"
    rest = await api.get(path, params=query)
    assert [m["message_id"] for m in rest.json()["items"]] == [2, 1, 0]
    assert "link" not in (await api.get(messages, params={"limit": 7})).headers
    assert "link" not in (await api.get(messages, params={"limit": 1, "offset": 6})).headers


async def test_the_link_keeps_percent_encoded_ids_and_the_filters(api):
    sid = f"a b%é?#{uuid.uuid4().hex[:6]}"
    await make_session(api, sid)
    agents = f"{S}/{quote(sid, safe='')}/agents"
    for aid in ("x", "y", "z"):
        body = {"agent_id": aid, "state": {}, "conversation_manager_state": {}}
        assert (await api.post(agents, json=body)).status_code == 201
    first = await api.get(agents, params={"limit": 2})
    url = next_url(first)
    assert url is not None and url.startswith(f"{agents}?")
    second = await api.get(url)
    assert [a["agent_id"] for a in second.json()["items"]] == ["z"]

    sessions = await api.get(S, params={"limit": 1, "session_type": "AGENT"})
    path, query = follow(S, sessions)
    assert query["session_type"] == "AGENT" and query["limit"] == "1"
    assert (await api.get(path, params=query)).status_code == 200


async def test_storage_key_pages_link_too(api):
    prefix = f"links-{uuid.uuid4().hex[:8]}/"
    octets = {"content-type": "application/octet-stream"}
    objects = "/api/v1/storage/objects"
    for name in ("a", "b", "c"):
        assert (
            await api.put(f"{objects}/{prefix}{name}", content=b"1", headers=octets)
        ).status_code == 204
    first = await api.get(objects, params={"prefix": prefix, "limit": 2})
    path, query = follow(objects, first)
    assert query["prefix"] == prefix
    last = await api.get(path, params=query)
    assert last.json()["items"] == [f"{prefix}c"] and "link" not in last.headers
