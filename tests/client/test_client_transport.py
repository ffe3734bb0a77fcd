"""The client's HTTP behaviour on a scripted transport: retries, Retry-After, error mapping,
headers (auth, If-Match, traceparent), paging requests, and the async twin. No server process:
one test drives the app in-process over ASGI through an injected client."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from strands.types.exceptions import SessionException
from strands.types.session import SessionAgent, SessionMessage
from strands_session_client import (
    AsyncHTTPSessionRepository,
    HTTPSessionRepository,
    InvalidSessionValueError,
    SessionBackendError,
    SessionUnavailableError,
    SessionVersionConflictError,
)

from tests.conftest import app_client

Handler = Callable[[httpx.Request], httpx.Response]


def envelope(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened", "request_id": "rid-1"}}
    return httpx.Response(status, json=body, headers=headers)


def agent_body(state: dict[str, Any], version: int) -> httpx.Response:
    body = {
        "agent_id": "a",
        "state": state,
        "conversation_manager_state": {},
        "_internal_state": {},
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "message_count": 0,
    }
    return httpx.Response(200, json=body, headers={"ETag": f'"{version}"'})


class Recorder:
    """A MockTransport handler answering from a script and keeping every request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(time.monotonic())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer


def repo_on(recorder: Recorder, **options: Any) -> HTTPSessionRepository:
    options.setdefault("max_retry_time", 5.0)
    return HTTPSessionRepository(
        "http://backend.test", transport=httpx.MockTransport(recorder), **options
    )


def test_503_with_retry_after_is_retried_after_waiting() -> None:
    recorder = Recorder(
        envelope(503, "service_unavailable", {"Retry-After": "0.3"}),
        httpx.Response(404, json={"error": {"code": "not_found"}}),
    )
    with repo_on(recorder) as repo:
        assert repo.read_session("s") is None
    assert len(recorder.requests) == 2
    assert recorder.times[1] - recorder.times[0] >= 0.29
    ids = {r.headers["x-request-id"] for r in recorder.requests}
    assert len(ids) == 1  # one id ties the attempts of one call together


@pytest.mark.parametrize("status", [503, 429])
def test_overload_that_never_ends_gives_up_with_the_servers_error(status: int) -> None:
    recorder = Recorder(envelope(status, "service_unavailable", {"Retry-After": "0.2"}))
    started = time.monotonic()
    with (
        repo_on(recorder, max_retry_time=1.0) as repo,
        pytest.raises(SessionUnavailableError) as raised,
    ):
        repo.read_session("s")
    assert time.monotonic() - started < 2.5
    assert len(recorder.requests) >= 3
    error = raised.value
    assert (error.status, error.code, error.request_id) == (status, "service_unavailable", "rid-1")
    assert "gave up after" in str(error)


def test_retry_after_is_capped() -> None:
    recorder = Recorder(
        envelope(503, "service_unavailable", {"Retry-After": "3600"}), httpx.Response(404)
    )
    with repo_on(recorder, max_retry_after=0.2) as repo:
        started = time.monotonic()
        assert repo.read_session("s") is None
    assert time.monotonic() - started < 1.5


def test_max_tries_bounds_the_attempts() -> None:
    recorder = Recorder(httpx.ConnectError("refused"))
    with (
        repo_on(recorder, max_tries=3, initial_backoff=0.01) as repo,
        pytest.raises(SessionUnavailableError) as raised,
    ):
        repo.read_agent("s", "a")
    assert len(recorder.requests) == 3
    assert raised.value.status is None and "after 3 attempt(s)" in str(raised.value)


def test_errors_are_session_exceptions_with_the_envelope_and_500_is_not_retried() -> None:
    recorder = Recorder(envelope(500, "internal"))
    with repo_on(recorder) as repo, pytest.raises(SessionBackendError) as raised:
        repo.read_session("s")
    assert len(recorder.requests) == 1
    assert isinstance(raised.value, SessionException)
    error = raised.value
    assert (error.status, error.code, error.message) == (500, "internal", "internal happened")
    assert str(error) == (
        "GET /api/v1/sessions/s: internal happened (HTTP 500, internal, request_id=rid-1)"
    )


def test_an_answer_that_is_not_json_still_maps_to_a_session_error() -> None:
    recorder = Recorder(httpx.Response(502, text="<html>bad gateway</html>"))
    with (
        repo_on(recorder, max_tries=2, initial_backoff=0.01) as repo,
        pytest.raises(SessionUnavailableError, match="bad gateway") as raised,
    ):
        repo.read_session("s")
    assert raised.value.status == 502 and raised.value.code is None


def test_api_key_is_sent_as_bearer_and_paths_are_encoded() -> None:
    recorder = Recorder(httpx.Response(404))
    with repo_on(recorder, api_key="k-123") as repo:
        repo.read_agent("a b", "x%y")
    request = recorder.requests[0]
    assert request.headers["authorization"] == "Bearer k-123"
    assert request.url.raw_path == b"/api/v1/sessions/a%20b/agents/x%25y"


def test_if_match_only_in_optimistic_mode() -> None:
    for optimistic in (False, True):
        recorder = Recorder(agent_body({}, 4), agent_body({"x": 1}, 5))
        with repo_on(recorder, optimistic=optimistic) as repo:
            repo.read_agent("s", "a")
            repo.update_agent("s", SessionAgent("a", {"x": 1}, {}))
        put = recorder.requests[1]
        assert put.headers.get("if-match") == ('"4"' if optimistic else None)


def test_412_after_a_lost_answer_is_recognised_as_our_own_write() -> None:
    # The first PUT lands but its answer is lost; the retry meets the new version (412).
    recorder = Recorder(
        agent_body({}, 4),
        httpx.ReadTimeout("lost"),
        envelope(412, "precondition_failed"),
        agent_body({"x": 1}, 5),
        envelope(412, "precondition_failed"),
    )
    with repo_on(recorder, optimistic=True, initial_backoff=0.01) as repo:
        repo.read_agent("s", "a")
        repo.update_agent("s", SessionAgent("a", {"x": 1}, {}))
        assert [r.method for r in recorder.requests] == ["GET", "PUT", "PUT", "GET"]
        # ...and the version it read back is the one sent next time.
        with pytest.raises(SessionVersionConflictError, match="another process"):
            repo.update_agent("s", SessionAgent("a", {"x": 2}, {}))
    assert recorder.requests[-1].headers["if-match"] == '"5"'


def test_nan_and_unknown_types_are_refused_before_sending_big_ints_pass() -> None:
    recorder = Recorder(httpx.Response(201, json={}))
    with repo_on(recorder) as repo:
        for bad in (math.nan, -math.inf, object()):
            with pytest.raises(InvalidSessionValueError):
                repo.create_message(
                    "s",
                    "a",
                    SessionMessage({"role": "user", "content": [{"text": "x", "v": bad}]}, 0),
                )
        assert recorder.requests == []
        repo.create_message(
            "s",
            "a",
            SessionMessage({"role": "user", "content": [{"n": 2**64 + 1, "s": "\ud800"}]}, 0),
        )
    body = recorder.requests[0].content
    assert b"18446744073709551617" in body and b"\\ud800" in body


def test_traceparent_is_injected_inside_an_active_span() -> None:
    recorder = Recorder(httpx.Response(404))
    tracer = TracerProvider().get_tracer("client-test")
    with repo_on(recorder) as repo:
        repo.read_session("s")
        with tracer.start_as_current_span("agent turn") as span:
            repo.read_session("s")
    assert "traceparent" not in recorder.requests[0].headers
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert recorder.requests[1].headers["traceparent"].split("-")[1] == trace_id


def test_list_messages_sends_offset_on_the_first_page_then_follows_cursors() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        """A service without streams: any `Accept` gets a page, of 100 unless `limit` says."""
        params = request.url.params
        start = int(params.get("offset", 0)) if "cursor" not in params else int(params["cursor"])
        size = int(params.get("limit", 100))
        ids = [i for i in range(start, min(start + size, 2500))]
        items = [SessionMessage({"role": "user", "content": []}, i).to_dict() for i in ids]
        more = ids and ids[-1] < 2499
        return httpx.Response(
            200, json={"items": items, "next_cursor": str(ids[-1] + 1) if more else None}
        )

    recorder = Recorder(page)
    with repo_on(recorder) as repo:
        got = repo.list_messages("s", "a", limit=1200, offset=100)
        assert [m.message_id for m in got] == list(range(100, 1300))
        assert len(repo.list_messages("s", "a", offset=100)) == 2400
        assert repo.list_messages("s", "a", limit=0) == []
    params = [dict(r.url.params) for r in recorder.requests]
    assert params[:2] == [
        {"order": "asc", "offset": "100", "limit": "1000"},
        {"order": "asc", "cursor": "1100", "limit": "200"},
    ]
    # 2400 from offset 100: the stream request, answered with a page of 100, then pages of
    # 1000 + 1000 + 300 from its cursor on.
    assert params[2] == {"order": "asc", "offset": "100"}
    assert [p.get("limit") for p in params[3:]] == ["1000", "1000", "1000"]
    assert len(params) == 2 + 4


async def test_async_twin_shares_the_mapping_and_retries() -> None:
    recorder = Recorder(
        httpx.ConnectError("refused"),
        envelope(503, "service_unavailable", {"Retry-After": "0"}),
        agent_body({"k": [1, 2]}, 3),
    )
    transport = httpx.MockTransport(recorder)
    async with AsyncHTTPSessionRepository(
        "http://backend.test", transport=transport, initial_backoff=0.01
    ) as repo:
        got = await repo.read_agent("s", "a")
    assert got is not None and got.state == {"k": [1, 2]}
    assert len(recorder.requests) == 3
    recorder = Recorder(httpx.ConnectError("refused"))
    async with AsyncHTTPSessionRepository(
        "http://backend.test",
        transport=httpx.MockTransport(recorder),
        max_retry_time=0.3,
        initial_backoff=0.01,
    ) as repo:
        with pytest.raises(SessionUnavailableError):
            await repo.read_session("s")


def test_base_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder(httpx.Response(404))
    monkeypatch.setenv("SESSION_BACKEND_URL", "http://from-env.test/prefix")
    monkeypatch.setenv("SESSION_BACKEND_API_KEY", "env-key")
    with HTTPSessionRepository(transport=httpx.MockTransport(recorder)) as repo:
        repo.read_session("s")
    assert str(recorder.requests[0].url) == "http://from-env.test/prefix/api/v1/sessions/s"
    assert recorder.requests[0].headers["authorization"] == "Bearer env-key"
    monkeypatch.delenv("SESSION_BACKEND_URL")
    with pytest.raises(InvalidSessionValueError, match="SESSION_BACKEND_URL"):
        HTTPSessionRepository()


def test_json_bodies_are_compact_utf8() -> None:
    recorder = Recorder(httpx.Response(201, json={}))
    with repo_on(recorder) as repo:
        repo.create_message(
            "s", "a", SessionMessage({"role": "user", "content": [{"text": "é\u0000"}]}, 3)
        )
    sent = recorder.requests[0]
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content)["message"]["content"][0]["text"] == "é\u0000"
    assert "é".encode() in sent.content


async def test_api_key_against_the_app_and_an_injected_client(app_factory: Any) -> None:
    async with app_client(app_factory(api_keys="k1")) as http:
        keyed = httpx.AsyncClient(
            transport=http._transport,
            base_url=http.base_url,
            headers={"Authorization": "Bearer k1"},
        )
        async with keyed, AsyncHTTPSessionRepository(client=keyed) as repo:
            assert await repo.read_session("nobody") is None
        async with AsyncHTTPSessionRepository(client=http) as repo:
            with pytest.raises(SessionBackendError) as raised:
                await repo.read_session("nobody")
    assert (raised.value.status, raised.value.code) == (401, "unauthorized")
    assert not isinstance(raised.value, SessionUnavailableError)
    with pytest.raises(InvalidSessionValueError, match="brings its own"):
        HTTPSessionRepository("http://x.test", client=httpx.Client())
