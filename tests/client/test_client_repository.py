"""HTTPSessionRepository against a real service: Strands' repository semantics, failure modes,
optimistic concurrency, and the deliberate differences from FileSessionManager."""

from __future__ import annotations

import logging
import math
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from client_support import build_agent, free_port, text
from strands.session.file_session_manager import FileSessionManager
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType
from strands_session_client import (
    AsyncHTTPSessionRepository,
    HTTPSessionManager,
    HTTPSessionRepository,
    InvalidSessionValueError,
    SessionBackendError,
    SessionConflictError,
    SessionNotFoundError,
    SessionUnavailableError,
    SessionVersionConflictError,
)


def message(message_id: int, words: str = "hi", role: str = "user") -> SessionMessage:
    return SessionMessage({"role": role, "content": [{"text": words}]}, message_id)


def agent(agent_id: str = "agent", **state: Any) -> SessionAgent:
    return SessionAgent(agent_id=agent_id, state=state, conversation_manager_state={})


class FakeMultiAgent:
    """Just what the repository needs of a Graph or Swarm."""

    def __init__(self, multi_agent_id: str, state: dict[str, Any]) -> None:
        self.id = multi_agent_id
        self.state = state

    def serialize_state(self) -> dict[str, Any]:
        return self.state


def seed(repo: HTTPSessionRepository, session_id: str, agent_id: str = "agent") -> None:
    repo.create_session(Session(session_id, SessionType.AGENT))
    repo.create_agent(session_id, agent(agent_id))


def test_round_trip_keeps_values_exactly(repo: HTTPSessionRepository, session_id: str) -> None:
    seed(repo, session_id)
    state = {
        "z": 1,
        "a": {
            "nul": "a\u0000b",
            "emoji": "\U0001f600",
            "big": 2**63 + 7,
            "neg": -(2**70),
            "float": 0.1,
            "exp": 1e300,
            "list": [None, True],
        },
        "blob": b"\x00\x01\xfe",
    }
    sent = agent(**state)
    repo.update_agent(session_id, sent)

    got = repo.read_agent(session_id, "agent")

    assert got is not None
    assert got.state == state
    assert list(got.state) == ["z", "a", "blob"] and next(iter(got.state["a"])) == "nul"
    assert got.created_at == sent.created_at  # adopted from the server's answer
    assert got._internal_state == {}


def test_reads_of_missing_rows_are_none_and_updates_raise_like_file(
    repo: HTTPSessionRepository, session_id: str, tmp_path: Path
) -> None:
    file_repo = FileSessionManager("file-session", storage_dir=str(tmp_path))
    for store, sid in ((repo, session_id), (file_repo, "file-session")):
        if store is repo:
            seed(repo, sid)
        else:
            store.create_agent(sid, agent())
        assert store.read_session("no-such-session") is None
        assert store.read_agent(sid, "no-such-agent") is None
        assert store.read_message(sid, "agent", 7) is None
        assert store.read_multi_agent(sid, "no-such-graph") is None
        with pytest.raises(SessionException):
            store.update_agent(sid, agent("no-such-agent"))
        with pytest.raises(SessionException):
            store.update_message(sid, "agent", message(7))
        with pytest.raises(SessionException):
            store.update_multi_agent(sid, FakeMultiAgent("no-such-graph", {}))
    with pytest.raises(SessionNotFoundError) as raised:
        repo.update_agent(session_id, agent("no-such-agent"))
    assert raised.value.status == 404 and raised.value.code == "not_found"
    assert raised.value.request_id


def test_create_session_twice_succeeds_where_file_raises(
    repo: HTTPSessionRepository, session_id: str, tmp_path: Path
) -> None:
    first = repo.create_session(Session(session_id, SessionType.AGENT))
    again = repo.create_session(Session(session_id, SessionType.AGENT))
    assert again == first  # retry-safe: the stored session, created_at unchanged

    file_repo = FileSessionManager("s", storage_dir=str(tmp_path))
    with pytest.raises(SessionException, match="already exists"):
        file_repo.create_session(Session("s", SessionType.AGENT))  # deliberate divergence


def test_create_agent_over_a_different_agent_raises_where_file_overwrites(
    repo: HTTPSessionRepository, session_id: str, tmp_path: Path
) -> None:
    seed(repo, session_id)
    repo.create_agent(session_id, agent())  # identical repeat: fine
    with pytest.raises(SessionConflictError) as raised:
        repo.create_agent(session_id, agent(other="state"))
    assert raised.value.status == 409 and raised.value.code == "conflict"
    assert repo.read_agent(session_id, "agent").state == {}

    file_repo = FileSessionManager("s", storage_dir=str(tmp_path))
    file_repo.create_agent("s", agent())
    file_repo.create_agent("s", agent(other="state"))  # deliberate divergence: overwritten
    assert file_repo.read_agent("s", "agent").state == {"other": "state"}


def test_different_message_under_existing_id_is_overwritten_with_a_warning_like_file(
    repo: HTTPSessionRepository, session_id: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed(repo, session_id)
    repo.create_message(session_id, "agent", message(0, "first"))
    repo.create_message(session_id, "agent", message(0, "first"))  # identical repeat: no warning
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        repo.create_message(session_id, "agent", message(0, "second"))

    assert "overwriting" in caplog.text
    stored = repo.read_message(session_id, "agent", 0)
    assert stored is not None and stored.message["content"] == [{"text": "second"}]
    file_repo = FileSessionManager("s", storage_dir=str(tmp_path))
    file_repo.create_agent("s", agent())
    file_repo.create_message("s", "agent", message(0, "first"))
    file_repo.create_message("s", "agent", message(0, "second"))  # silently
    assert file_repo.read_message("s", "agent", 0).message == stored.message


def test_full_trim_restart_overwrites_old_rows_even_in_optimistic_mode(
    client_server_url: str, session_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A conversation manager that trimmed all 4 stored messages: restore lists nothing, and
    # Strands numbers the next message 0 again, over a stored row.
    with HTTPSessionRepository(client_server_url) as repo:
        seed(repo, session_id, "assistant")
        for i in range(4):
            repo.create_message(
                session_id, "assistant", message(i, f"old {i}", ("user", "assistant")[i % 2])
            )
        trimmed = agent("assistant")
        trimmed.conversation_manager_state = {
            "__name__": "SlidingWindowConversationManager",
            "removed_message_count": 4,
        }
        repo.update_agent(session_id, trimmed)
    with HTTPSessionManager(session_id, client_server_url, optimistic=True) as manager:
        restored = build_agent(manager, "assistant", scripts=[text("fresh answer")])
        assert restored.messages == []
        with caplog.at_level(logging.WARNING):
            restored("fresh question")
        stored = manager.repository.read_message(session_id, "assistant", 0)
    assert "overwriting" in caplog.text
    assert stored is not None and stored.message["content"] == [{"text": "fresh question"}]


def test_list_messages_pages_through_ten_thousand_with_strands_offsets(
    repo: HTTPSessionRepository, session_id: str, client_server_url: str
) -> None:
    seed(repo, session_id)
    path = f"/api/v1/sessions/{session_id}/agents/agent/messages/batch"
    with httpx.Client(base_url=client_server_url, timeout=60) as http:
        for start in range(0, 10_000, 1000):
            batch = [
                message(i, f"message {i}", ("user", "assistant")[i % 2]).to_dict()
                for i in range(start, start + 1000)
            ]
            assert http.post(path, json={"messages": batch}).status_code == 201

    started = time.perf_counter()
    everything = repo.list_messages(session_id, "agent")
    elapsed = time.perf_counter() - started

    assert [m.message_id for m in everything] == list(range(10_000))
    assert everything[9999].message["content"] == [{"text": "message 9999"}]
    assert elapsed < 10, f"a 10,000-message restore took {elapsed:.2f} s"
    rest = repo.list_messages(session_id=session_id, agent_id="agent", offset=2500)
    assert [m.message_id for m in rest] == list(range(2500, 10_000))
    window = repo.list_messages(session_id, "agent", limit=1500, offset=1999)
    assert [m.message_id for m in window] == list(range(1999, 3499))
    assert [
        m.message_id for m in repo.list_messages(session_id, "agent", limit=3, offset=9998)
    ] == [9998, 9999]
    assert repo.list_messages(session_id, "agent", limit=0) == []
    assert repo.list_messages(session_id, "agent", offset=10_000) == []


def test_list_messages_of_a_missing_agent_raises(
    repo: HTTPSessionRepository, session_id: str
) -> None:
    seed(repo, session_id)
    with pytest.raises(SessionNotFoundError):
        repo.list_messages(session_id, "no-such-agent")


def test_nan_is_refused_before_sending(client_server_url: str, session_id: str) -> None:
    with HTTPSessionManager(session_id, client_server_url) as manager:
        strands_agent = build_agent(manager, scripts=[text("ok")])
        strands_agent.state.set("score", math.nan)  # Strands' own check lets NaN through
        with pytest.raises(InvalidSessionValueError, match=r"\$\.state\.score.*NaN"):
            strands_agent("hello")
        repo = manager.repository
        with pytest.raises(InvalidSessionValueError, match=r"content\[0\]\.value"):
            repo.create_message(
                session_id,
                "assistant",
                SessionMessage({"role": "user", "content": [{"value": math.inf}]}, 5),
            )
        assert repo.read_message(session_id, "assistant", 5) is None


def test_ids_are_percent_encoded_and_bad_ids_refused(repo: HTTPSessionRepository) -> None:
    odd = "a b%2F?#&x=1é\U0001f600"
    repo.create_session(Session(odd, SessionType.AGENT))
    repo.create_agent(odd, agent("ag ent%"))
    assert repo.read_session(odd).session_id == odd
    assert repo.read_agent(odd, "ag ent%") is not None
    for bad in ("a/b", "..", ".", "   "):
        with pytest.raises(SessionBackendError) as raised:
            repo.read_session(bad)
        assert raised.value.status == 422 and raised.value.code == "invalid_id", bad
    with pytest.raises(InvalidSessionValueError):
        repo.read_session("")


def test_stray_bytes_are_encoded_like_strands(repo: HTTPSessionRepository, session_id: str) -> None:
    repo.create_session(Session(session_id, SessionType.AGENT))
    repo.create_multi_agent(session_id, FakeMultiAgent("graph", {"task": b"\x00raw"}))
    state = repo.read_multi_agent(session_id, "graph")
    assert state == {"task": {"__bytes_encoded__": True, "data": "AHJhdw=="}}


def test_optimistic_mode_raises_when_another_process_changed_the_agent(
    client_server_url: str, session_id: str
) -> None:
    with (
        HTTPSessionRepository(client_server_url, optimistic=True) as first,
        HTTPSessionRepository(client_server_url, optimistic=True) as second,
    ):
        seed(first, session_id)
        assert second.read_agent(session_id, "agent") is not None
        first.update_agent(session_id, agent(turn=1))
        first.update_agent(session_id, agent(turn=2))  # its own writes keep its version current

        with pytest.raises(SessionVersionConflictError, match="another process") as raised:
            second.update_agent(session_id, agent(turn=99))
        assert raised.value.status == 412 and raised.value.code == "precondition_failed"
        assert first.read_agent(session_id, "agent").state == {"turn": 2}
        second.read_agent(session_id, "agent")  # re-reading adopts the current version
        second.update_agent(session_id, agent(turn=3))

        first.create_multi_agent(session_id, FakeMultiAgent("g", {"step": 0}))
        second.read_multi_agent(session_id, "g")
        first.update_multi_agent(session_id, FakeMultiAgent("g", {"step": 1}))
        with pytest.raises(SessionVersionConflictError):
            second.update_multi_agent(session_id, FakeMultiAgent("g", {"step": 9}))


def test_optimistic_mode_stops_two_processes_appending_to_one_agent(
    client_server_url: str, session_id: str
) -> None:
    with HTTPSessionManager(session_id, client_server_url, optimistic=True) as manager:
        build_agent(manager, scripts=[])
    with (
        HTTPSessionManager(session_id, client_server_url, optimistic=True) as one,
        HTTPSessionManager(session_id, client_server_url, optimistic=True) as two,
    ):
        first = build_agent(one, scripts=[text("from one")])
        second = build_agent(two, scripts=[text("from two")])
        first("hello from one")
        with pytest.raises(SessionConflictError, match="another process"):
            second("hello from two")
    with HTTPSessionRepository(client_server_url) as repo:
        kept = repo.list_messages(session_id, "assistant")
    assert [m.message["content"][0]["text"] for m in kept] == ["hello from one", "from one"]


def test_delete_session(repo: HTTPSessionRepository, session_id: str) -> None:
    seed(repo, session_id)
    repo.delete_session(session_id)
    assert repo.read_session(session_id) is None
    with pytest.raises(SessionNotFoundError):
        repo.delete_session(session_id)


def test_service_down_raises_a_session_exception_within_the_retry_time() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(SessionUnavailableError) as raised:
        HTTPSessionManager("s", url, max_retry_time=1.0)
    elapsed = time.monotonic() - started

    assert 0.9 < elapsed < 3, elapsed
    assert isinstance(raised.value, SessionException)
    assert raised.value.status is None and raised.value.code == "unreachable"
    assert "unreachable" in str(raised.value) and url in str(raised.value)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


def test_service_that_never_answers_times_out_within_the_retry_time() -> None:
    with socket.socket() as listener:  # accepts connections (kernel backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with (
            pytest.raises(SessionUnavailableError) as raised,
            HTTPSessionRepository(url, read_timeout=0.3, max_retry_time=1.0) as repo,
        ):
            repo.read_session("s")
        elapsed = time.monotonic() - started
    assert elapsed < 3, elapsed
    assert raised.value.code == "timeout" and raised.value.status is None


async def test_async_repository_against_the_service(
    client_server_url: str, session_id: str
) -> None:
    async with AsyncHTTPSessionRepository(client_server_url, optimistic=True) as repo:
        await repo.create_session(Session(session_id, SessionType.AGENT))
        await repo.create_agent(session_id, agent(step=1))
        for i in range(3):
            await repo.create_message(session_id, "agent", message(i, f"m{i}"))
        await repo.update_message(session_id, "agent", message(1, "edited"))
        await repo.update_agent(session_id, agent(step=2))
        assert (await repo.read_agent(session_id, "agent")).state == {"step": 2}
        listed = await repo.list_messages(session_id, "agent", offset=1)
        assert [m.message["content"][0]["text"] for m in listed] == ["edited", "m2"]
        assert await repo.read_message(session_id, "agent", 9) is None
        with pytest.raises(SessionNotFoundError):
            await repo.update_agent(session_id, agent("missing"))


class LosesAnswers(httpx.BaseTransport):
    """Delivers every request to the service but loses the answer to the first `method` one."""

    def __init__(self, method: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.method = method
        self.lost = 0
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.method)
        response = self.inner.handle_request(request)
        if request.method == self.method and not self.lost:
            response.read()
            response.close()
            self.lost += 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_create_whose_answer_was_lost_is_retried_without_a_duplicate(
    client_server_url: str, session_id: str
) -> None:
    transport = LosesAnswers("POST")
    with HTTPSessionRepository(client_server_url, transport=transport) as repo:
        repo.create_session(Session(session_id, SessionType.AGENT))  # lost, retried: 200
        repo.create_agent(session_id, agent())
        repo.create_message(session_id, "agent", message(0))
        assert transport.lost == 1
        assert [m.message_id for m in repo.list_messages(session_id, "agent")] == [0]


def test_an_optimistic_update_whose_answer_was_lost_is_not_a_conflict(
    client_server_url: str, session_id: str
) -> None:
    transport = LosesAnswers("PUT")
    with HTTPSessionRepository(client_server_url, transport=transport, optimistic=True) as repo:
        seed(repo, session_id)
        # Applied, answer lost: the retry carries the same Idempotency-Key, so the service
        # answers it with the first attempt's outcome (200), not a 412.
        repo.update_agent(session_id, agent(turn=1))
        assert transport.seen[-2:] == ["PUT", "PUT"]
        repo.update_agent(session_id, agent(turn=2))  # and the version it adopted is current
        assert transport.lost == 1
        assert repo.read_agent(session_id, "agent").state == {"turn": 2}
