"""A whole restore (`list_messages` without a limit) is one streamed request: messages are built
as lines arrive, equal to what was stored; a stream that breaks midway is read again from the
start under the retry policy (nothing kept twice), or fails as unavailable once it is spent; a
service without streams is read in pages; a line that is not JSON fails cleanly."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType
from strands_session_client import (
    AsyncHTTPSessionRepository,
    HTTPSessionRepository,
    SessionBackendError,
    SessionUnavailableError,
    codec,
)

COUNT = 2345
BIG = [2**64 + 1, -(2**63) - 1, 10**30, 1.5, 0.1]


def stored(repo: HTTPSessionRepository, session_id: str) -> list[SessionMessage]:
    """An agent `agent` with COUNT messages (big integers, a key order, bytes in one)."""
    repo.create_session(Session(session_id, SessionType.AGENT))
    repo.create_agent(session_id, SessionAgent("agent", {}, {}))
    messages = [
        SessionMessage({"role": "user", "content": [{"z": i, "a": BIG[i % 5], "text": "é"}]}, i)
        for i in range(COUNT)
    ]
    messages[1234].message["content"].append({"image": {"bytes": b"\x00\xff"}})
    for start in range(0, COUNT, 1000):
        repo.create_messages(session_id, "agent", messages[start : start + 1000])
    return messages


class _Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
    """The first chunk of `inner`, then the connection is gone."""

    def __init__(self, inner: httpx.SyncByteStream | httpx.AsyncByteStream) -> None:
        self.inner = inner

    def __iter__(self) -> Iterator[bytes]:
        assert isinstance(self.inner, httpx.SyncByteStream)
        yield next(iter(self.inner))
        raise httpx.RemoteProtocolError("peer closed connection mid-body")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self.inner, httpx.AsyncByteStream)
        async for chunk in self.inner:
            yield chunk
            break
        raise httpx.RemoteProtocolError("peer closed connection mid-body")

    def close(self) -> None:
        assert isinstance(self.inner, httpx.SyncByteStream)
        self.inner.close()

    async def aclose(self) -> None:
        assert isinstance(self.inner, httpx.AsyncByteStream)
        await self.inner.aclose()


def _breaks(response: httpx.Response, left: list[int]) -> bool:
    if left[0] and response.headers.get("content-type") == "application/x-ndjson":
        left[0] -= 1
        return True
    return False


class Breaking(httpx.HTTPTransport):
    """The real transport, recording requests; the first `breaks` streams break midway."""

    def __init__(self, breaks: int = 0) -> None:
        super().__init__()
        self.left = [breaks]
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = super().handle_request(request)
        if _breaks(response, self.left):
            response.stream = _Broken(response.stream)
        return response


class AsyncBreaking(httpx.AsyncHTTPTransport):
    def __init__(self, breaks: int = 0) -> None:
        super().__init__()
        self.left = [breaks]
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await super().handle_async_request(request)
        if _breaks(response, self.left):
            response.stream = _Broken(response.stream)
        return response


def dicts(messages: list[SessionMessage]) -> list[dict]:
    return [
        {"id": m.message_id, "message": m.message, "redact": m.redact_message} for m in messages
    ]


async def test_a_restore_is_one_streamed_request_with_what_was_stored(
    repo: HTTPSessionRepository, session_id: str, client_server_url: str
) -> None:
    messages = stored(repo, session_id)
    transport = Breaking()
    with HTTPSessionRepository(client_server_url, transport=transport) as streaming:
        restored = streaming.list_messages(session_id, "agent")
        tail = streaming.list_messages(session_id, "agent", offset=2000)
    assert dicts(restored) == dicts(messages)
    assert restored[1234].message["content"][1]["image"]["bytes"] == b"\x00\xff"
    assert [type(v) for v in restored[2].message["content"][0].values()] == [int, int, str]
    assert [m.message_id for m in tail] == list(range(2000, COUNT))
    assert [
        (r.headers["accept"].split(",")[0], r.url.params.get("offset")) for r in transport.requests
    ] == [
        ("application/x-ndjson", "0"),
        ("application/x-ndjson", "2000"),
    ]
    # The same as the pages give (a limit reads pages), timestamps included.
    assert [m.to_dict() for m in restored] == [
        m.to_dict() for m in repo.list_messages(session_id, "agent", limit=COUNT + 1)
    ]
    atransport = AsyncBreaking()
    async with AsyncHTTPSessionRepository(client_server_url, transport=atransport) as arepo:
        assert [m.to_dict() for m in await arepo.list_messages(session_id, "agent")] == [
            m.to_dict() for m in restored
        ]
    assert len(atransport.requests) == 1


async def test_a_stream_broken_midway_is_read_again_from_the_start(
    repo: HTTPSessionRepository,
    session_id: str,
    client_server_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    messages = stored(repo, session_id)
    caplog.set_level(logging.WARNING)
    transport = Breaking(breaks=1)
    with HTTPSessionRepository(client_server_url, transport=transport) as streaming:
        assert dicts(streaming.list_messages(session_id, "agent")) == dicts(messages)
    atransport = AsyncBreaking(breaks=1)
    async with AsyncHTTPSessionRepository(client_server_url, transport=atransport) as arepo:
        assert dicts(await arepo.list_messages(session_id, "agent")) == dicts(messages)
    assert len(transport.requests) == len(atransport.requests) == 2
    retries = [r.getMessage() for r in caplog.records if "RemoteProtocolError" in r.getMessage()]
    assert len(retries) == 2, retries
    assert gc.isenabled()


async def test_a_stream_that_keeps_breaking_gives_up_as_unavailable(
    repo: HTTPSessionRepository, session_id: str, client_server_url: str
) -> None:
    stored(repo, session_id)
    transport = Breaking(breaks=10)
    with HTTPSessionRepository(client_server_url, transport=transport, max_tries=3) as streaming:
        with pytest.raises(SessionUnavailableError, match="RemoteProtocolError"):
            streaming.list_messages(session_id, "agent")
    atransport = AsyncBreaking(breaks=10)
    async with AsyncHTTPSessionRepository(
        client_server_url, transport=atransport, max_tries=3
    ) as arepo:
        with pytest.raises(SessionUnavailableError, match="RemoteProtocolError"):
            await arepo.list_messages(session_id, "agent")
    assert len(transport.requests) == len(atransport.requests) == 3
    assert gc.isenabled()


def test_a_service_without_streams_is_read_in_pages() -> None:
    """As before streams: the service answers the stream request with its default page (100)."""
    seen: list[dict[str, str]] = []

    def service(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        seen.append(params)
        start = int(params.get("cursor", params.get("offset", 0)))
        ids = list(range(start, min(start + int(params.get("limit", 100)), 1500)))
        items = [SessionMessage({"role": "user", "content": []}, i).to_dict() for i in ids]
        cursor = str(ids[-1] + 1) if ids and ids[-1] < 1499 else None
        return httpx.Response(200, json={"items": items, "next_cursor": cursor})

    with HTTPSessionRepository("http://old.test", transport=httpx.MockTransport(service)) as old:
        assert [m.message_id for m in old.list_messages("s", "a", offset=5)] == list(range(5, 1500))
    assert seen == [
        {"order": "asc", "offset": "5"},
        {"order": "asc", "cursor": "105", "limit": "1000"},
        {"order": "asc", "cursor": "1105", "limit": "1000"},
    ]


def test_a_line_that_is_not_json_fails_and_the_collector_runs_again() -> None:
    good = SessionMessage({"role": "user", "content": []}, 0).to_dict()
    body = httpx.Response(200, json=good).content + b"\n{not json\n"

    def service(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/x-ndjson"})

    with HTTPSessionRepository("http://bad.test", transport=httpx.MockTransport(service)) as bad:
        with pytest.raises(SessionBackendError, match="non-JSON line"):
            bad.list_messages("s", "a")
    assert gc.isenabled()


def test_messages_are_built_the_same_by_position_and_by_keyword(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = [
        {**SessionMessage({"role": "user", "content": [{"n": i}]}, i).to_dict(), "extra": 1}
        for i in range(3)
    ]
    items[1]["redact_message"] = {"role": "user", "content": []}
    assert codec._IN_ORDER  # the installed Strands takes the fields in this order
    by_position = codec._messages_from(items, has_bytes=False)
    monkeypatch.setattr(codec, "_IN_ORDER", False)
    by_keyword = codec._messages_from(items, has_bytes=False)
    assert [m.to_dict() for m in by_position] == [m.to_dict() for m in by_keyword]
    assert [m.to_dict() for m in by_keyword] == [
        {k: v for k, v in item.items() if k != "extra"} for item in items
    ]
