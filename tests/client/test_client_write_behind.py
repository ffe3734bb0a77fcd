"""Write-behind and async hooks with the real SDK, a scripted model and a real `python -m service`
behind a proxy that adds a fixed delay to every request.

- A tool turn with `write_behind=True` stores the same history as the synchronous mode, and the
  agent waits for its session work about one round trip per turn instead of one per write.
- A backend killed in the middle of a turn makes the invocation raise at the barrier; what is
  stored is an ordered, duplicate-free prefix of the agent's history, and nothing is sent after
  the failed write.
- During `invoke_async` no session request runs on the event loop's thread, and the loop keeps
  ticking while the session waits on the slow backend.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from strands import Agent, tool
from strands_session_client import (
    HTTPSessionManager,
    HTTPSessionRepository,
    SessionBackendError,
    SessionUnavailableError,
)

from tests.client.client_support import ScriptedModel, add, build_graph, text, tool_call
from tests.client.slow_proxy import SlowProxy
from tests.support import ServiceProcess, free_port

DELAY = 0.02  # added to every request by the proxy
LAG_DELAY = 0.1  # the proxy's delay in the event-loop test: a request on the loop shows
# What each scripted model call takes: real ones take seconds, time in which queued writes drain.
MODEL_TIME = 0.12


class SlowModel(ScriptedModel):
    """A scripted model that takes `MODEL_TIME` per call, as a real one takes longer."""

    async def stream(self, messages: Any, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        await asyncio.sleep(MODEL_TIME)
        async for event in super().stream(messages, *args, **kwargs):
            yield event


class TimedManager(HTTPSessionManager):
    """Adds up the time the agent spends in the session hooks of an invocation."""

    session_seconds = 0.0

    async def _message_added(self, event: Any) -> None:
        started = time.perf_counter()
        try:
            await super()._message_added(event)
        finally:
            self.session_seconds += time.perf_counter() - started

    async def _after_invocation(self, event: Any) -> None:
        started = time.perf_counter()
        try:
            await super()._after_invocation(event)
        finally:
            self.session_seconds += time.perf_counter() - started


def tool_turns(count: int) -> list[list[dict[str, Any]]]:
    scripts = []
    for n in range(count):
        scripts += [tool_call("add", {"a": n, "b": 1}, f"t{n}"), text(f"it is {n + 1}")]
    return scripts


def stored(url: str, session_id: str, agent_id: str = "default") -> dict[str, Any]:
    """Messages and agent state as the service holds them (read without the proxy)."""
    with HTTPSessionRepository(url) as repo:
        messages = repo.list_messages(session_id, agent_id)
        agent = repo.read_agent(session_id, agent_id)
    assert agent is not None
    return {
        "ids": [m.message_id for m in messages],
        "messages": json.loads(json.dumps([m.message for m in messages])),
        "state": agent.state,
        "conversation_manager_state": agent.conversation_manager_state,
    }


def comparable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages without what differs from run to run (random tracking ids, model timings)."""
    return [{k: v for k, v in m.items() if k not in ("tracking_id", "metadata")} for m in messages]


@pytest.fixture
def slow_proxy(client_server_url: str) -> Iterator[SlowProxy]:
    proxy = SlowProxy(int(client_server_url.rsplit(":", 1)[1]), delay=DELAY)
    yield proxy
    proxy.close()


def test_write_behind_tool_turns_store_the_same_history_in_about_one_round_trip(
    client_server_url: str, slow_proxy: SlowProxy
) -> None:
    turns = 6
    per_turn: dict[bool, list[float]] = {}
    histories: dict[bool, dict[str, Any]] = {}
    requests: dict[bool, int] = {}
    for write_behind in (False, True):
        session_id = f"wb-{write_behind}-{uuid.uuid4().hex}"
        counter = ThreadRecorder()
        with TimedManager(
            session_id, slow_proxy.url, write_behind=write_behind, transport=counter
        ) as manager:
            agent = Agent(
                model=SlowModel(tool_turns(turns)),
                tools=[add],
                session_manager=manager,
                callback_handler=None,
            )
            agent.state.set("turns", 0)
            per_turn[write_behind] = []
            manager.flush()  # the agent's creation, queued at construction in write-behind
            before = len(counter.threads)
            for n in range(turns):
                manager.session_seconds = 0.0
                agent.state.set("turns", n + 1)
                agent(f"add {n} and 1")
                per_turn[write_behind].append(manager.session_seconds)
                # Durable when the invocation returns: everything is stored, in order.
                now = stored(client_server_url, session_id)
                assert now["messages"] == json.loads(json.dumps(agent.messages))
                assert now["ids"] == list(range(len(agent.messages)))
                assert now["state"] == {"turns": n + 1}
            requests[write_behind] = len(counter.threads) - before
            histories[write_behind] = stored(client_server_url, session_id)

    sync, behind = histories[False], histories[True]
    assert comparable(behind["messages"]) == comparable(sync["messages"])
    assert behind["state"] == sync["state"]
    assert behind["conversation_manager_state"] == sync["conversation_manager_state"]
    # Batched appends and dropped obsolete agent syncs: never more requests for the same
    # history (how many fewer depends on what is still queued when the next write comes).
    assert requests[True] <= requests[False]
    # The synchronous mode waits one round trip per write (4 appends and a sync per tool turn);
    # write-behind about one per turn. A same-run ratio, generous for a loaded machine.
    sync_median = statistics.median(per_turn[False])
    behind_median = statistics.median(per_turn[True])
    print(
        f"session time per tool turn (median of {turns}, {DELAY * 1000:.0f} ms per request):"
        f" sync {sync_median * 1000:.1f} ms, write-behind {behind_median * 1000:.1f} ms"
    )
    assert sync_median >= 4 * DELAY
    assert behind_median < sync_median / 2, per_turn


def test_a_backend_killed_mid_turn_fails_the_invocation_at_the_barrier(
    client_dsn: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {"DATABASE_URL": client_dsn, "LOG_LEVEL": "WARNING", "API_KEYS": "", "PORT": str(port)}
    server = ServiceProcess(env, tmp_path / "first.log")
    server.wait_ready(timeout=60)
    session_id = f"killed-{uuid.uuid4().hex}"

    @tool
    def crash(x: int) -> int:
        """Kill the session backend, then answer.

        Args:
            x: Returned as is.
        """
        server.proc.kill()
        server.proc.wait()
        return x

    scripts = [text("first"), tool_call("crash", {"x": 7}, "c1"), text("after the crash")]
    manager = HTTPSessionManager(session_id, server.url, write_behind=True, max_retry_time=1.0)
    agent = Agent(
        model=SlowModel(scripts), tools=[crash], session_manager=manager, callback_handler=None
    )
    try:
        agent("one")
        durable = stored(server.url, session_id)
        with pytest.raises(SessionUnavailableError) as raised:
            agent("two")
        assert server.url in str(raised.value)
        # The queue is stopped: later writes and barriers fail, pointing at the first failure.
        with pytest.raises(SessionBackendError, match="stopped after an earlier write failed"):
            manager.flush()
    finally:
        server.stop()

    restarted = ServiceProcess(env, tmp_path / "second.log")
    try:
        restarted.wait_ready(timeout=60)
        after = stored(restarted.url, session_id)
        history = json.loads(json.dumps(agent.messages))
        # The first turn is intact; the second is an ordered, duplicate-free prefix of the
        # agent's history, shorter than it (its last writes were never sent).
        assert after["messages"][: len(durable["messages"])] == durable["messages"]
        assert after["ids"] == list(range(len(after["ids"])))
        assert after["messages"] == history[: len(after["messages"])]
        assert len(after["messages"]) < len(history)
        # A new manager resumes from what is stored.
        with HTTPSessionManager(session_id, restarted.url) as resumed:
            again = Agent(model=SlowModel([]), session_manager=resumed, callback_handler=None)
            assert json.loads(json.dumps(again.messages)) == after["messages"]
    finally:
        restarted.stop()


class ThreadRecorder(httpx.HTTPTransport):
    """A real transport that notes which thread sent each request."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.threads.append(threading.get_ident())
        return super().handle_request(request)


@pytest.mark.parametrize("write_behind", [False, True], ids=["sync", "write_behind"])
async def test_invoke_async_never_runs_a_session_request_on_the_event_loop(
    client_server_url: str, write_behind: bool
) -> None:
    proxy = SlowProxy(int(client_server_url.rsplit(":", 1)[1]), delay=LAG_DELAY)
    recorder = ThreadRecorder()
    session_id = f"loop-{uuid.uuid4().hex}"
    try:
        manager = HTTPSessionManager(
            session_id, proxy.url, write_behind=write_behind, transport=recorder
        )
        agent = Agent(
            model=SlowModel(tool_turns(2)),
            tools=[add],
            session_manager=manager,
            callback_handler=None,
        )
        recorder.threads.clear()  # construction reads and creates synchronously, by design
        lags: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                started = time.perf_counter()
                await asyncio.sleep(0.001)
                lags.append(time.perf_counter() - started - 0.001)

        ticking = asyncio.create_task(ticker())
        for n in range(2):
            await agent.invoke_async(f"add {n} and 1")
        done.set()
        await ticking
        manager.close()
    finally:
        proxy.close()

    loop_thread = threading.get_ident()
    assert len(recorder.threads) >= 6  # the turns did talk to the service
    assert loop_thread not in recorder.threads
    print(
        f"event-loop lag during invoke_async ({'write-behind' if write_behind else 'sync'}):"
        f" max {max(lags) * 1000:.1f} ms, median {statistics.median(lags) * 1000:.2f} ms"
    )
    # A request on the loop would stall it for the proxy's delay, once per request; a loaded
    # machine may stall it once or twice on its own.
    stalls = [lag for lag in lags if lag >= LAG_DELAY * 0.9]
    assert len(stalls) < 3, stalls


def test_a_graph_with_write_behind_stores_its_state_before_it_returns(
    client_server_url: str,
) -> None:
    session_id = f"graph-wb-{uuid.uuid4().hex}"
    with HTTPSessionManager(session_id, client_server_url, write_behind=True) as manager:
        graph = build_graph(manager, ScriptedModel([text("A did it")]), ScriptedModel([text("B")]))
        graph("task")
        # Read past the manager: the barrier at the end of the Graph's invocation stored it.
        with HTTPSessionRepository(client_server_url) as repo:
            state = repo.read_multi_agent(session_id, "pipeline")
        assert state is not None
        assert state["status"] == "completed"
        assert sorted(state["completed_nodes"]) == ["a", "b"]  # a set in the SDK
        assert state["execution_order"] == graph.serialize_state()["execution_order"]


@pytest.mark.parametrize("turn_route", [True, False], ids=["turn_route", "older_service"])
def test_the_queue_is_bounded_and_keeps_order_batches_and_drops_obsolete_syncs(
    turn_route: bool,
) -> None:
    from strands.types.session import SessionAgent, SessionMessage
    from strands_session_client.write_behind import WriteBehindRepository

    gate = threading.Event()
    sent: list[tuple[str, str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        gate.wait(10)
        body = json.loads(request.content)
        sent.append((request.method, request.url.path.rsplit("/", 1)[-1], body))
        if request.url.path.endswith("/turn"):
            if not turn_route:  # a service older than the route
                return httpx.Response(404, json={"error": {"code": "not_found", "message": "?"}})
            return httpx.Response(201, json={"messages": body["messages"], "agent": body["agent"]})
        if request.url.path.endswith("/batch"):
            return httpx.Response(201, json={"items": body["messages"], "next_cursor": None})
        return httpx.Response(200 if request.method == "PUT" else 201, json=body)

    repo = HTTPSessionRepository("http://backend.test", transport=httpx.MockTransport(answer))
    queue = WriteBehindRepository(repo, max_queued=3)

    def message(n: int) -> SessionMessage:
        return SessionMessage({"role": "user", "content": [{"text": str(n)}]}, n)

    def agent(turn: int) -> SessionAgent:
        return SessionAgent("a", {"turn": turn}, {})

    def run() -> None:
        queue.create_message("s", "a", message(0))  # taken by the sender, held at the gate
        while not queue.has_room(3):
            time.sleep(0.01)
        queue.update_agent("s", agent(1))
        queue.create_message("s", "a", message(1))
        queue.create_message("s", "a", message(2))  # the queue is full (3)
        queue.update_agent("s", agent(2))  # replaces the queued older sync: room for it
        blocked = threading.Thread(target=queue.create_message, args=("s", "a", message(3)))
        blocked.start()  # full again: this writer waits...
        time.sleep(0.2)
        assert blocked.is_alive()
        gate.set()  # ...until the sender makes room
        blocked.join(10)
        queue.flush()

    run()
    requests = [(method, last) for method, last, _ in sent]
    if turn_route:
        # Messages 1 and 2 and only the newest agent sync (the older one was still queued) in
        # one turn request.
        assert requests == [("POST", "messages"), ("POST", "turn"), ("POST", "messages")]
        turn = sent[1][2]
        assert [m["message_id"] for m in turn["messages"]] == [1, 2]
        assert turn["agent"]["state"] == {"turn": 2}
        assert sent[2][2]["message_id"] == 3
    else:
        # The turn route answered 404: the same writes, in their order, one route each; the
        # route is not tried again.
        assert requests == [
            ("POST", "messages"),
            ("POST", "turn"),
            ("POST", "batch"),  # messages 1 and 2 in one request
            ("PUT", "a"),  # only the newest agent sync: the older one was still queued
            ("POST", "messages"),
        ]
        assert [m["message_id"] for m in sent[2][2]["messages"]] == [1, 2]
        assert sent[3][2]["state"] == {"turn": 2}
        assert sent[4][2]["message_id"] == 3
        gate.clear()
        sent.clear()
        queue.create_message("s", "a", message(4))  # held at the gate...
        while not queue.has_room(3):
            time.sleep(0.01)
        queue.create_message("s", "a", message(5))  # ...while these two queue up
        queue.update_agent("s", agent(3))
        gate.set()
        queue.flush()
        requests = [(method, last) for method, last, _ in sent]
        assert requests == [("POST", "messages"), ("POST", "messages"), ("PUT", "a")]
    queue.close()


def test_a_turn_request_keeps_its_idempotency_key_across_retries(
    client_server_url: str,
) -> None:
    """The turn request through a real service, with its first answer lost: the retry carries
    the same key, and the turn is stored once (the service answers the recorded outcome)."""
    from strands.types.session import Session, SessionAgent, SessionMessage, SessionType
    from strands_session_client.write_behind import WriteBehindRepository

    keys: list[str] = []
    queued = threading.Event()

    class LoseFirstTurnAnswer(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/messages"):
                queued.wait(10)  # the first append waits until the rest is queued behind it
            response = super().handle_request(request)
            if request.url.path.endswith("/turn"):
                keys.append(request.headers["idempotency-key"])
                if len(keys) == 1:
                    response.read()
                    raise httpx.ReadError("the answer was lost", request=request)
            return response

    session_id = f"turn-retry-{uuid.uuid4().hex}"
    repo = HTTPSessionRepository(client_server_url, transport=LoseFirstTurnAnswer())
    repo.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
    repo.create_agent(session_id, SessionAgent("a", {}, {}))
    queue = WriteBehindRepository(repo)
    for n in range(3):
        queue.create_message(
            session_id, "a", SessionMessage({"role": "user", "content": [{"text": str(n)}]}, n)
        )
    queue.update_agent(session_id, SessionAgent("a", {"turn": 1}, {}))
    queued.set()
    queue.close()
    assert len(keys) == 2 and keys[0] == keys[1]
    with HTTPSessionRepository(client_server_url) as reader:
        assert [m.message_id for m in reader.list_messages(session_id, "a")] == [0, 1, 2]
        stored = reader.read_agent(session_id, "a")
    assert stored is not None and stored.state == {"turn": 1}
    repo.close()


def test_the_first_failed_write_stops_the_queue_and_is_raised_at_the_barrier() -> None:
    from strands.types.session import SessionMessage
    from strands_session_client.write_behind import WriteBehindRepository

    gate = threading.Event()
    sent: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        gate.wait(10)
        message_id = json.loads(request.content)["message_id"]
        sent.append(message_id)
        if message_id == 1:
            return httpx.Response(500, json={"error": {"code": "internal", "message": "boom"}})
        return httpx.Response(201, json={})

    repo = HTTPSessionRepository("http://backend.test", transport=httpx.MockTransport(answer))
    queue = WriteBehindRepository(repo)
    for n in range(4):
        queue.create_message("s", f"agent-{n}", SessionMessage({"role": "user", "content": []}, n))
    gate.set()
    with pytest.raises(SessionBackendError, match="boom") as first:
        queue.flush()
    assert first.value.status == 500
    assert sent == [0, 1]  # nothing after the failed write was sent
    with pytest.raises(SessionBackendError, match="stopped after an earlier write failed"):
        queue.create_message("s", "agent-9", SessionMessage({"role": "user", "content": []}, 9))
    with pytest.raises(SessionBackendError, match="stopped after an earlier write failed"):
        queue.close()
    assert sent == [0, 1]
