"""A restore's pages (with a limit, or from a service without streams): the next page is asked
for (from the `Link` header) before this one is parsed, on a second connection (sync: one
short-lived thread; async: a task); answers parse to what `json.loads` gives (integers of any
size exact), with the cyclic garbage collector paused only while a page is built; errors raise
what they raise without pages asked for ahead, leaving no thread behind."""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import strands_session_client.async_repository as async_module
import strands_session_client.repository as sync_module
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType
from strands_session_client import (
    AsyncHTTPSessionRepository,
    HTTPSessionRepository,
    SessionBackendError,
    SessionNotFoundError,
    SessionUnavailableError,
    codec,
)

TOTAL = 2500
BIG = [2**64 + 1, -(2**63) - 1, 10**30, -(10**40), 2**64 - 1, -(2**63), 1.5, 1e300, 0.1]


def ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("strands-session-ahead")]


class Pages:
    """A mock service of TOTAL messages without streams (it answers a page to any `Accept`;
    `default_limit` messages unless `limit` says), with `Link` headers (unless `links` is
    False); `fail` maps a page's first id to the answer it gets instead."""

    def __init__(
        self,
        *,
        links: bool = True,
        link_cursor: Callable[[int], str] = str,
        default_limit: int = 1000,
    ) -> None:
        self.links = links
        self.default_limit = default_limit
        self.link_cursor = link_cursor
        self.fail: dict[int, Callable[[], httpx.Response] | Exception] = {}
        self.requests: list[dict[str, str]] = []
        self.arrived = threading.Condition()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        with self.arrived:
            self.requests.append(params)
            self.arrived.notify_all()
        start = int(params["cursor"]) if "cursor" in params else int(params.get("offset", 0))
        failure = self.fail.get(start)
        if isinstance(failure, Exception):
            raise failure
        if failure is not None:
            return failure()
        ids = list(range(start, min(start + int(params.get("limit", self.default_limit)), TOTAL)))
        items = [SessionMessage({"role": "user", "content": [{"n": i}]}, i).to_dict() for i in ids]
        more = bool(ids) and ids[-1] < TOTAL - 1
        headers = {}
        if more and self.links:
            headers["Link"] = f'</m?limit=1000&cursor={self.link_cursor(ids[-1] + 1)}>; rel="next"'
        body = {"items": items, "next_cursor": str(ids[-1] + 1) if more else None}
        return httpx.Response(200, json=body, headers=headers)

    def wait_for(self, count: int) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.requests) >= count, timeout=5)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Callable[[], None]]]:
    """Hooks run before each parse of an answer (in order), for the tests to look around."""
    hooks: list[Callable[[], None]] = []
    loads = codec._loads

    def hooked(content: bytes) -> Any:
        if hooks:
            hooks.pop(0)()
        return loads(content)

    monkeypatch.setattr(codec, "_loads", hooked)
    yield hooks


def sync_repo(pages: Pages) -> HTTPSessionRepository:
    transport = httpx.MockTransport(pages)
    return HTTPSessionRepository("http://backend.test", transport=transport, max_tries=1)


def async_repo(pages: Pages) -> AsyncHTTPSessionRepository:
    transport = httpx.MockTransport(pages)
    return AsyncHTTPSessionRepository("http://backend.test", transport=transport, max_tries=1)


def test_the_next_page_is_asked_for_before_this_one_is_parsed(parses) -> None:
    pages = Pages()
    seen: list[bool] = []
    # Parsing page k waits (up to 5 s) for the request of page k + 1 to have arrived.
    parses.extend([lambda: seen.append(pages.wait_for(2)), lambda: seen.append(pages.wait_for(3))])
    with sync_repo(pages) as repo:
        got = repo.list_messages("s", "a", offset=0)
    assert seen == [True, True]
    assert [m.message_id for m in got] == list(range(TOTAL))
    assert got[2499].message == {"role": "user", "content": [{"n": 2499}]}
    assert pages.requests == [
        {"order": "asc", "offset": "0"},  # the stream this service does not have
        {"order": "asc", "cursor": "1000", "limit": "1000"},
        {"order": "asc", "cursor": "2000", "limit": "1000"},
    ]
    assert ahead_threads() == []


async def test_the_async_client_asks_ahead_too(parses) -> None:
    pages = Pages()
    counts: list[int] = []
    parses.extend([lambda: counts.append(len(pages.requests))] * 3)
    async with async_repo(pages) as repo:
        got = await repo.list_messages("s", "a")
        window = await repo.list_messages("s", "a", limit=1200, offset=100)
    assert counts == [2, 3, 3]  # page 2 was requested before page 1 was parsed, and so on
    assert [m.message_id for m in got] == list(range(TOTAL))
    assert [m.message_id for m in window] == list(range(100, 1300))
    assert pages.requests[-2:] == [
        {"order": "asc", "offset": "100", "limit": "1000"},
        {"order": "asc", "cursor": "1100", "limit": "200"},
    ]


def test_limits_are_kept_and_a_link_that_disagrees_with_the_body_is_not_followed() -> None:
    pages = Pages(link_cursor=lambda at: str(at + 7))
    with sync_repo(pages) as repo:
        assert [m.message_id for m in repo.list_messages("s", "a")] == list(range(TOTAL))
    asked = [r.get("cursor") for r in pages.requests]
    # Each page's link was asked for ahead (its answer dropped), then the body's cursor.
    assert asked[0] is None and sorted(asked[1:]) == ["1000", "1007", "2000", "2007"]
    pages = Pages()
    with sync_repo(pages) as repo:
        assert len(repo.list_messages("s", "a", limit=1000)) == 1000
        assert [m.message_id for m in repo.list_messages("s", "a", limit=1001)] == list(range(1001))
    assert [r.get("limit") for r in pages.requests] == ["1000", "1000", "1"]
    assert ahead_threads() == []


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (lambda: httpx.Response(404, json={"error": {"code": "not_found"}}), SessionNotFoundError),
        (lambda: httpx.Response(500, json={"error": {"code": "internal"}}), SessionBackendError),
        (httpx.ConnectError("refused"), SessionUnavailableError),
    ],
)
async def test_a_page_failing_mid_restore_raises_what_it_raises_without_links(
    failure: Callable[[], httpx.Response] | Exception, error: type[Exception]
) -> None:
    for links in (False, True):
        pages = Pages(links=links)
        pages.fail[2000] = failure
        with sync_repo(pages) as repo, pytest.raises(error) as sync_raised:
            repo.list_messages("s", "a")
        async with async_repo(pages) as arepo:
            with pytest.raises(error) as async_raised:
                await arepo.list_messages("s", "a")
        assert type(sync_raised.value) is type(async_raised.value)
        assert ahead_threads() == []


def test_a_page_that_does_not_parse_waits_for_the_page_asked_for_ahead(parses) -> None:
    pages = Pages()
    pages.fail[0] = lambda: httpx.Response(
        200, content=b"{not json", headers={"Link": '</m?cursor=1000>; rel="next"'}
    )
    with sync_repo(pages) as repo, pytest.raises(SessionBackendError, match="non-JSON"):
        repo.list_messages("s", "a")
    assert [r.get("cursor") for r in pages.requests] == [None, "1000"]
    assert ahead_threads() == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"n":18446744073709551617}',
        b'{"n":-9223372036854775809}',
        b'[1,[{"deep":{"x":100000000000000000000000000000}}]]',
        b'{"s":"12345678901234567890123","n":12345678901234567890123}',
        b'{"max":18446744073709551615,"min":-9223372036854775808,"f":1e300,"g":-0.0}',
        b'{"s":"\\ud800","n":1}',  # a lone surrogate escape: orjson refuses, json reads
        b'{"inf":1e400}',
        b'{"a":1,"a":2}',
        b'{"t":"\\u0000\xf0\x9f\x98\x80"}',
        b"[" * 300 + b"]" * 300,  # deeper than pydantic-core goes
        b"[Infinity,NaN]",
    ],
)
def test_answers_parse_exactly_as_json_does(body: bytes) -> None:
    parsed = codec._loads(body)
    assert repr(parsed) == repr(json.loads(body))


def test_what_is_not_json_fails_as_json_fails() -> None:
    for body in (b"{not json", b'{"a":"\xff"}', b"01"):
        with pytest.raises(ValueError) as raised:
            codec._loads(body)
        with pytest.raises(ValueError) as expected:
            json.loads(body)
        assert type(raised.value) is type(expected.value)
        assert str(raised.value) == str(expected.value)


def test_a_restore_keeps_big_integers_exactly(
    repo: HTTPSessionRepository, session_id: str, client_server_url: str
) -> None:
    repo.create_session(Session(session_id, SessionType.AGENT))
    repo.create_agent(session_id, SessionAgent("agent", {}, {}))
    messages = [
        SessionMessage({"role": "user", "content": [{"text": f"m{i}"}]}, i) for i in range(1500)
    ]
    for at, value in zip((3, 999, 1000, 1499), BIG, strict=False):
        messages[at].message["content"].append({"json": {"n": value, "all": BIG}})
    messages[1200].message["content"].append({"image": {"bytes": b"\x00\xff"}})
    for start in range(0, 1500, 500):
        repo.create_messages(session_id, "agent", messages[start : start + 500])

    with httpx.Client(base_url=client_server_url) as http:
        first = http.get(
            f"/api/v1/sessions/{session_id}/agents/agent/messages", params={"limit": 1000}
        )
        assert first.links["next"]["url"].endswith(first.json()["next_cursor"])
    restored = repo.list_messages(session_id, "agent")
    assert [m.message for m in restored] == [m.message for m in messages]
    for at in (3, 999, 1000, 1499):
        values = restored[at].message["content"][1]["json"]["all"]
        assert [(type(v), v) for v in values] == [(type(v), v) for v in BIG]
    assert restored[1200].message["content"][1]["image"]["bytes"] == b"\x00\xff"


async def test_the_async_restore_matches_the_sync_one(
    repo: HTTPSessionRepository, session_id: str, client_server_url: str
) -> None:
    repo.create_session(Session(session_id, SessionType.AGENT))
    repo.create_agent(session_id, SessionAgent("agent", {}, {}))
    messages = [
        SessionMessage({"role": "user", "content": [{"text": f"m{i}", "n": BIG[i % 9]}]}, i)
        for i in range(2100)
    ]
    for start in range(0, 2100, 700):
        repo.create_messages(session_id, "agent", messages[start : start + 700])
    async with AsyncHTTPSessionRepository(client_server_url) as arepo:
        restored = await arepo.list_messages(session_id, "agent")
    assert [m.to_dict() for m in restored] == [
        m.to_dict() for m in repo.list_messages(session_id, "agent")
    ]
    assert [m.message for m in restored] == [m.message for m in messages]


async def test_against_the_service_parsing_waits_only_until_the_next_request_is_written(
    repo: HTTPSessionRepository,
    session_id: str,
    client_server_url: str,
    parses,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo.create_session(Session(session_id, SessionType.AGENT))
    repo.create_agent(session_id, SessionAgent("agent", {}, {}))
    messages = [SessionMessage({"role": "user", "content": []}, i) for i in range(2001)]
    for start in range(0, 2001, 1000):
        repo.create_messages(session_id, "agent", messages[start : start + 1000])
    # httpcore's trace tells when a request asked for ahead is written; count those events.
    events: list[str] = []
    written = codec._written

    def seen(name: str) -> bool:
        if written(name):
            events.append(name)
        return written(name)

    monkeypatch.setattr(sync_module, "_written", seen)
    monkeypatch.setattr(async_module, "_written", seen)
    at_parse: list[int] = []
    parses.extend([lambda: at_parse.append(len(events))] * 3)
    # With a limit, a restore reads pages (without one, the service streams it: test_client_stream).
    assert len(repo.list_messages(session_id, "agent", limit=2001)) == 2001
    parses.extend([lambda: at_parse.append(len(events))] * 3)
    async with AsyncHTTPSessionRepository(client_server_url) as arepo:
        assert len(await arepo.list_messages(session_id, "agent", limit=2001)) == 2001
    # Page 1 was parsed after page 2's request was written, page 2 after page 3's.
    assert at_parse == [1, 2, 2, 3, 4, 4]
    assert all(name.endswith("send_request_body.complete") for name in events)


def test_the_collector_is_paused_only_while_a_page_is_built(parses) -> None:
    states: list[bool] = []
    parses.extend([lambda: states.append(gc.isenabled())] * 3)
    with sync_repo(Pages()) as repo:
        assert len(repo.list_messages("s", "a")) == TOTAL
        assert states == [False, False, False] and gc.isenabled()
        gc.disable()  # an application's own choice is kept
        try:
            assert len(repo.list_messages("s", "a")) == TOTAL
            assert not gc.isenabled()
        finally:
            gc.enable()
        pages = Pages()
        pages.fail[0] = lambda: httpx.Response(200, content=b"{not json")
    with sync_repo(pages) as repo, pytest.raises(SessionBackendError):
        repo.list_messages("s", "a")
    assert gc.isenabled()


def test_overlapping_pauses_restore_the_collector_once() -> None:
    first, second = codec._gc_paused(), codec._gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second pause is still under way
    second.__exit__(None, None, None)
    assert gc.isenabled()
