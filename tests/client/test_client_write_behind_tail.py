"""The tail of a write-behind turn: what gathers before it is sent, and the barrier of an event
loop. A mock transport stands in for the service (the requests' shape is what is checked; the
turn route itself is tested against PostgreSQL in tests/test_turns.py)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest
from strands.types.session import SessionAgent, SessionMessage
from strands_session_client import HTTPSessionRepository, SessionBackendError
from strands_session_client.write_behind import WriteBehindRepository


class Recorder:
    """Answers like the service; notes each request's route, body and thread; can hold them."""

    def __init__(self, fail_with: int | None = None) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.threads: set[int] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.fail_with = fail_with

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.gate.wait(10)
        self.threads.add(threading.get_ident())
        body = json.loads(request.content)
        route = request.url.path.rsplit("/", 1)[-1]
        self.sent.append((route, body))
        if self.fail_with is not None:
            return httpx.Response(
                self.fail_with, json={"error": {"code": "internal", "message": "boom"}}
            )
        if route == "turn":
            return httpx.Response(201, json={"messages": body["messages"], "agent": body["agent"]})
        if route == "batch":
            return httpx.Response(201, json={"items": body["messages"], "next_cursor": None})
        return httpx.Response(200 if request.method == "PUT" else 201, json=body)


def queue_for(recorder: Recorder, **options: Any) -> WriteBehindRepository:
    repo = HTTPSessionRepository("http://backend.test", transport=httpx.MockTransport(recorder))
    return WriteBehindRepository(repo, **options)


def message(n: int) -> SessionMessage:
    return SessionMessage({"role": "user", "content": [{"text": str(n)}]}, n)


def a_turn(queue: WriteBehindRepository, first: int) -> None:
    """A tool turn's writes: four messages, the agent's sync after the third."""
    for n in range(first, first + 3):
        queue.create_message("s", "a", message(n))
    queue.update_agent("s", SessionAgent("a", {"turn": first}, {}))
    queue.create_message("s", "a", message(first + 3))


def test_a_turn_queued_within_the_linger_is_one_request_sent_at_the_barrier() -> None:
    recorder = Recorder()
    queue = queue_for(recorder, linger=1.0)
    a_turn(queue, 0)
    assert recorder.sent == []  # gathering: nothing sent within the linger
    queue.flush()  # the barrier sends at once
    assert [route for route, _ in recorder.sent] == ["turn"]
    body = recorder.sent[0][1]
    assert [m["message_id"] for m in body["messages"]] == [0, 1, 2, 3]
    assert body["agent"]["state"] == {"turn": 0}
    queue.close()


def test_after_a_barrier_the_next_turn_gathers_again() -> None:
    recorder = Recorder()
    queue = queue_for(recorder, linger=1.0)
    for turn in range(3):
        a_turn(queue, 4 * turn)  # queued right after the previous barrier returned
        assert len(recorder.sent) == turn  # still gathering
        queue.flush()
        assert len(recorder.sent) == turn + 1
    assert [route for route, _ in recorder.sent] == ["turn"] * 3
    queue.close()


def test_without_a_linger_the_first_write_leaves_at_once() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    queue = queue_for(recorder, linger=0)
    queue.create_message("s", "a", message(0))
    while not queue.has_room(queue.max_queued):  # the sender took it without waiting
        threading.Event().wait(0.001)
    a_turn(queue, 1)
    recorder.gate.set()
    queue.close()
    assert [route for route, _ in recorder.sent] == ["messages", "turn"]


async def test_the_event_loop_awaits_the_barrier_without_a_worker_thread() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    queue = queue_for(recorder, linger=1.0)
    a_turn(queue, 0)
    threads = threading.active_count()
    barrier = asyncio.create_task(queue.flush_async())
    await asyncio.sleep(0.05)
    assert not barrier.done()  # held by the gated request, the loop still runs
    assert threading.active_count() == threads  # no worker thread waits for it
    recorder.gate.set()
    await asyncio.wait_for(barrier, 10)
    assert [route for route, _ in recorder.sent] == ["turn"]
    assert threading.get_ident() not in recorder.threads
    await queue.flush_async()  # nothing queued: returns at once
    queue.close()


async def test_a_cancelled_barrier_leaves_the_queue_working() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    queue = queue_for(recorder, linger=1.0)
    a_turn(queue, 0)
    barrier = asyncio.create_task(queue.flush_async())
    await asyncio.sleep(0.05)
    barrier.cancel()
    with pytest.raises(asyncio.CancelledError):
        await barrier
    recorder.gate.set()
    await asyncio.wait_for(queue.flush_async(), 10)
    a_turn(queue, 4)
    await asyncio.wait_for(queue.flush_async(), 10)
    assert [m["message_id"] for _, body in recorder.sent for m in body["messages"]] == list(
        range(8)
    )
    queue.close()


async def test_the_event_loops_barrier_raises_the_first_failure() -> None:
    recorder = Recorder(fail_with=500)
    queue = queue_for(recorder)
    a_turn(queue, 0)
    with pytest.raises(SessionBackendError, match="boom") as first:
        await asyncio.wait_for(queue.flush_async(), 10)
    assert first.value.status == 500
    with pytest.raises(SessionBackendError, match="stopped after an earlier write failed"):
        await queue.flush_async()
    assert len(recorder.sent) == 1  # one turn request, nothing after it
    with pytest.raises(SessionBackendError):
        queue.close()


def test_optimistic_mode_keeps_each_sync_on_its_own_put() -> None:
    recorder = Recorder()
    repo = HTTPSessionRepository(
        "http://backend.test", transport=httpx.MockTransport(recorder), optimistic=True
    )
    queue = WriteBehindRepository(repo, linger=1.0)
    a_turn(queue, 0)
    queue.close()
    # If-Match applies to the agent alone: appends batch, the sync is its own PUT, in order.
    assert [route for route, _ in recorder.sent] == ["batch", "a", "messages"]


def test_the_linger_is_bounded() -> None:
    with pytest.raises(ValueError, match="linger"):
        queue_for(Recorder(), linger=5)
