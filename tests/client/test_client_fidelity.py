"""The repository's Strands fidelity and its newer calls against a real `python -m service`:
stored timestamps adopted by `create_session`, the SDK's "does not exist" wording, a retried
delete, one `Idempotency-Key` per call, `list_sessions` (paged, filtered), a `base_url` ending
in `/api/v1`, shared connection pools, and `strands-cli session list`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionType
from strands_session_cli.main import cli
from strands_session_client import (
    AsyncHTTPSessionRepository,
    HTTPSessionManager,
    HTTPSessionRepository,
    SessionNotFoundError,
)


def test_create_session_adopts_the_stored_timestamps(repo: HTTPSessionRepository, session_id):
    session = Session(session_id=session_id, session_type=SessionType.AGENT)
    session.created_at = session.updated_at = "2000-01-01T00:00:00+00:00"

    returned = repo.create_session(session)

    stored = repo.read_session(session_id)
    assert stored is not None
    assert returned is session
    assert (session.created_at, session.updated_at) == (stored.created_at, stored.updated_at)
    assert session.created_at != "2000-01-01T00:00:00+00:00"


def test_deleting_a_missing_session_says_it_does_not_exist(repo: HTTPSessionRepository):
    with pytest.raises(SessionException, match="does not exist") as raised:
        repo.delete_session(f"missing-{uuid.uuid4().hex}")
    assert isinstance(raised.value, SessionNotFoundError)


class LoseFirstAnswer(httpx.HTTPTransport):
    """Sends every request, but drops the answer of the first one: a retry follows."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = super().handle_request(request)
        if len(self.requests) == 1:
            response.read()
            response.close()
            raise httpx.ReadError("connection lost after the request was sent")
        return response


def test_a_retried_delete_whose_first_answer_was_lost_succeeds(
    client_server_url: str, session_id: str
) -> None:
    with HTTPSessionRepository(client_server_url) as setup:
        setup.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
    transport = LoseFirstAnswer()
    with HTTPSessionRepository(client_server_url, transport=transport, initial_backoff=0) as repo:
        repo.delete_session(session_id)  # no SessionNotFoundError from the retry
        assert repo.read_session(session_id) is None
    first, retry = transport.requests[:2]
    assert first.headers["Idempotency-Key"] == retry.headers["Idempotency-Key"]
    assert first.headers["X-Request-ID"] == retry.headers["X-Request-ID"]


def test_every_write_carries_its_own_idempotency_key_and_reads_none() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(503, headers={"Retry-After": "0"})
        if request.method == "GET":
            return httpx.Response(404, json={"error": {"code": "not_found"}})
        body = {"session_id": "s", "session_type": "AGENT", "created_at": "x", "updated_at": "x"}
        return httpx.Response(201, json=body)

    transport = httpx.MockTransport(answer)
    with HTTPSessionRepository("http://backend.test", transport=transport) as repo:
        repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
        repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
        repo.read_session("s")
    first, retry, second, read = seen
    assert first.headers["Idempotency-Key"] == retry.headers["Idempotency-Key"]
    assert second.headers["Idempotency-Key"] != first.headers["Idempotency-Key"]
    assert "Idempotency-Key" not in read.headers


def test_list_sessions_pages_and_filters(repo: HTTPSessionRepository) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    prefix = uuid.uuid4().hex[:8]
    ids = [f"list-{prefix}-{n}" for n in range(5)]
    for session_id in ids:
        repo.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))

    everything = repo.list_sessions(created_after=before)
    mine = [s.session_id for s in everything if s.session_id.startswith(f"list-{prefix}")]
    assert mine == ids[::-1]  # newest first
    assert all(s.session_type is SessionType.AGENT for s in everything)
    # A limit below one page, and pages of one (each a request of its own).
    assert len(repo.list_sessions(limit=2, created_after=before)) == 2
    assert repo.list_sessions(limit=0) == []
    assert repo.list_sessions(created_before=before - timedelta(days=3650)) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        repo.list_sessions(created_after=datetime(2020, 1, 1))


async def test_async_list_sessions_matches_the_sync_one(
    client_server_url: str, repo: HTTPSessionRepository
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=5)
    async with AsyncHTTPSessionRepository(client_server_url) as async_repo:
        listed = await async_repo.list_sessions(limit=3, created_after=since.isoformat())
    assert [s.session_id for s in listed] == [
        s.session_id for s in repo.list_sessions(limit=3, created_after=since)
    ]


def test_a_base_url_ending_in_the_api_prefix_works(client_server_url: str, session_id: str):
    with HTTPSessionManager(session_id, client_server_url + "/api/v1/") as manager:
        assert manager.repository.read_session(session_id) is not None
    with pytest.raises(ValueError, match="http:// or https://"):
        HTTPSessionRepository("127.0.0.1:8000")


def test_repositories_with_the_same_settings_share_one_connection_pool(
    client_server_url: str,
) -> None:
    first = HTTPSessionRepository(client_server_url)
    second = HTTPSessionRepository(client_server_url + "/")
    other = HTTPSessionRepository(client_server_url, api_key="another")
    first.close()
    assert first._client is second._client
    assert other._client is not first._client
    assert not second._client.is_closed  # closing one repository leaves the pool to the others
    assert second.read_session(f"missing-{uuid.uuid4().hex}") is None


def test_cli_session_list(client_server_url: str, repo: HTTPSessionRepository) -> None:
    prefix = uuid.uuid4().hex[:8]
    for n in range(3):
        repo.create_session(Session(session_id=f"cli-{prefix}-{n}", session_type=SessionType.AGENT))
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(cli, ["session", "list", "--url", client_server_url, *args])
        assert result.exit_code == 0, result.output
        return result.output

    lines = [json.loads(line) for line in run("--json", "--limit", "2").splitlines()]
    assert [item["session_id"] for item in lines] == [f"cli-{prefix}-2", f"cli-{prefix}-1"]
    table = run("--limit", "3")
    assert f"cli-{prefix}-0" in table and "3 session(s)" in table
    assert "0 session(s)" in run("--created-before", "2001-01-01")
    down = runner.invoke(cli, ["session", "list", "--url", "http://127.0.0.1:9"])
    assert down.exit_code == 1 and "cannot connect" in down.output
