"""Exclusive sessions with the real Strands SDK: processes running turns on one session at once.

Each worker (exclusive_worker.py) is its own `python` process with an agent on a model that
takes a little time per call and answers `<prompt> saw <n>` (n: the messages it was given), so
the stored history tells which turns each model saw. A real `python -m service` serves them all.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from client_support import build_graph, text
from exclusive_worker import EchoModel
from strands import Agent
from strands.types.exceptions import SessionException
from strands_session_client import (
    HTTPSessionManager,
    SessionBusyError,
    SessionLeaseLostError,
)

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]


class Worker:
    """A running exclusive_worker.py process."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "exclusive_worker.py"), json.dumps(spec)],
            cwd=HERE,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ready(self) -> Worker:
        """Wait until its agent is built (its session restored) and it waits for `go`."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line + self.proc.stderr.read()
        return self

    def result(self, timeout: float = 120) -> dict[str, Any]:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)


@pytest.fixture
def workers(client_server_url: str, session_id: str, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """Start workers on this test's session (each starts at once: call `ready()` on them
    together); `go` starts their turns."""
    started: list[Worker] = []
    go = tmp_path / "go"

    def start(name: str, **spec: Any) -> Worker:
        spec = {
            "base_url": client_server_url,
            "session_id": session_id,
            "name": name,
            "go": str(go),
            "turns": 1,
            "exclusive": True,
            **spec,
        }
        worker = Worker(spec)
        started.append(worker)
        return worker

    yield start, go
    for worker in started:
        if worker.proc.poll() is None:
            os.kill(worker.proc.pid, signal.SIGCONT)
            worker.kill()


def stored(url: str, session_id: str) -> list[tuple[int, str, str]]:
    """(message_id, role, text) of the shared agent's stored history."""
    r = httpx.get(f"{url}/api/v1/sessions/{session_id}/agents/shared/messages?limit=1000")
    assert r.status_code == 200, r.text
    return [
        (m["message_id"], m["message"]["role"], m["message"]["content"][0]["text"])
        for m in r.json()["items"]
    ]


def wait_for(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def check_whole_turns(history: list[tuple[int, str, str]]) -> list[str]:
    """Assert dense unique ids and whole turns, each answered by a model that saw everything
    before it; the prompts in stored order."""
    assert [m[0] for m in history] == list(range(len(history)))
    prompts = []
    for position in range(0, len(history), 2):
        (_, role, prompt), (_, answer_role, answer) = history[position : position + 2]
        assert (role, answer_role) == ("user", "assistant"), history
        assert answer == f"{prompt} saw {position + 1}", history
        prompts.append(prompt)
    return prompts


def test_exclusive_processes_store_whole_turns_each_seeing_all_before(
    workers, client_server_url, session_id
):
    start, go = workers
    a, b = start("A", turns=5, delay=0.15), start("B", turns=5, delay=0.15)
    a.ready(), b.ready()
    go.touch()
    results = {"A": a.result(), "B": b.result()}
    for result in results.values():
        assert [t["outcome"] for t in result["turns"]] == ["ok"] * 5  # waiting, never failing
    prompts = check_whole_turns(stored(client_server_url, session_id))
    assert sorted(prompts) == sorted(f"{n}#{i}" for n in "AB" for i in range(5))
    for name in "AB":  # each process's turns in its own order
        assert [p for p in prompts if p[0] == name] == [f"{name}#{i}" for i in range(5)]


def test_without_exclusive_the_same_run_loses_acknowledged_turns(
    workers, client_server_url, session_id
):
    start, go = workers
    a = start("A", turns=5, delay=0.15, exclusive=False)
    b = start("B", turns=5, delay=0.15, exclusive=False)
    a.ready(), b.ready()
    go.touch()
    for result in (a.result(), b.result()):
        assert [t["outcome"] for t in result["turns"]] == ["ok"] * 5  # nobody was told
    history = stored(client_server_url, session_id)
    # Both numbered their messages 0..9 from what they alone knew and overwrote each other:
    # 20 messages were acknowledged, at most 10 are stored, and each model saw only its own.
    assert len(history) <= 10
    prompts = {text for _, role, text in history if role == "user"}
    assert len(prompts) < 10


def test_a_killed_holder_is_taken_over_once_its_lease_expires(
    workers, client_server_url, session_id
):
    start, go = workers
    holder = start("A", delay=120, lease_ttl=3)  # its turn never ends by itself
    taker = start("B", delay=0.05, lease_ttl=3, lease_wait=60)
    holder.ready(), taker.ready()
    lease_url = f"{client_server_url}/api/v1/sessions/{session_id}/lease"
    os.kill(taker.proc.pid, signal.SIGSTOP)  # B starts once A holds the lease
    go.touch()
    wait_for(lambda: any(t == "A#0" for _, _, t in stored(client_server_url, session_id)))
    os.kill(holder.proc.pid, signal.SIGKILL)  # in the middle of its turn
    holder.kill()
    last = httpx.get(lease_url).json()  # no renewal after the kill: this is its last expiry
    os.kill(taker.proc.pid, signal.SIGCONT)
    result = taker.result()
    assert [t["outcome"] for t in result["turns"]] == ["ok"]
    taken = result["turns"][0]["lease"]
    assert datetime.fromisoformat(taken["acquired_at"]) >= datetime.fromisoformat(
        last["expires_at"]
    )
    # B reloaded before its turn: its model saw A's unanswered prompt.
    assert stored(client_server_url, session_id) == [
        (0, "user", "A#0"),
        (1, "user", "B#0"),
        (2, "assistant", "B#0 saw 2"),
    ]


def test_a_paused_holder_is_fenced_off_after_another_took_over(
    workers, client_server_url, session_id
):
    start, go = workers
    holder = start("A", delay=5, lease_ttl=3)
    taker = start("B", delay=0.05, lease_ttl=30, lease_wait=60)
    holder.ready(), taker.ready()
    lease_url = f"{client_server_url}/api/v1/sessions/{session_id}/lease"
    os.kill(taker.proc.pid, signal.SIGSTOP)  # B runs once A is paused and its lease expired
    go.touch()
    wait_for(lambda: any(t == "A#0" for _, _, t in stored(client_server_url, session_id)))
    os.kill(holder.proc.pid, signal.SIGSTOP)  # in the middle of its turn, holding the lease
    wait_for(lambda: httpx.get(lease_url).status_code == 404)  # expired: nobody renews it
    os.kill(taker.proc.pid, signal.SIGCONT)
    assert [t["outcome"] for t in taker.result()["turns"]] == ["ok"]
    after_b = stored(client_server_url, session_id)
    agent_after_b = httpx.get(
        f"{client_server_url}/api/v1/sessions/{session_id}/agents/shared"
    ).json()
    os.kill(holder.proc.pid, signal.SIGCONT)
    result = holder.result()
    assert [t["outcome"] for t in result["turns"]] == ["SessionLeaseLostError"]
    assert after_b == [(0, "user", "A#0"), (1, "user", "B#0"), (2, "assistant", "B#0 saw 2")]
    assert stored(client_server_url, session_id) == after_b  # nothing of A's turn after that
    agent_now = httpx.get(f"{client_server_url}/api/v1/sessions/{session_id}/agents/shared")
    assert agent_now.json()["version"] == agent_after_b["version"]


def test_lease_wait_exceeded_raises_session_busy_in_about_that_time(client_server_url, session_id):
    assert issubclass(SessionBusyError, SessionException)
    assert issubclass(SessionLeaseLostError, SessionException)
    with HTTPSessionManager(
        session_id, client_server_url, exclusive=True, lease_wait=1.0, max_retry_time=5
    ) as manager:
        agent = Agent(
            model=EchoModel(0.0), agent_id="shared", session_manager=manager, callback_handler=None
        )
        lease_url = f"{client_server_url}/api/v1/sessions/{session_id}/lease"
        other = httpx.post(lease_url, json={"holder": "someone else", "ttl_seconds": 60})
        assert other.status_code == 201
        started = time.monotonic()
        with pytest.raises(SessionBusyError) as busy:
            agent("hello")
        waited = time.monotonic() - started
        assert 1.0 <= waited < 6.0, waited
        assert busy.value.code == "session_busy" and "someone else" in str(busy.value)
        assert stored(client_server_url, session_id) == []  # the turn never started
        httpx.delete(lease_url, headers={"X-Session-Lease": str(other.json()["token"])})
        agent("hello")  # free again
        assert [t for _, _, t in stored(client_server_url, session_id)] == [
            "hello",
            "hello saw 1",
        ]


def test_a_plain_client_writing_to_a_leased_session_gets_session_busy(
    client_server_url, session_id
):
    from strands.types.session import Session, SessionAgent, SessionType
    from strands_session_client import HTTPSessionRepository

    with HTTPSessionRepository(client_server_url, max_retry_time=5) as repo:
        repo.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
        lease_url = f"{client_server_url}/api/v1/sessions/{session_id}/lease"
        assert httpx.post(lease_url, json={"holder": "worker-7"}).status_code == 201
        agent = SessionAgent(agent_id="a", state={}, conversation_manager_state={})
        with pytest.raises(SessionBusyError) as busy:
            repo.create_agent(session_id, agent)
        assert busy.value.status == 409 and "worker-7" in str(busy.value)
        assert repo.read_agent(session_id, "a") is None  # reads pass, nothing was written


@pytest.mark.parametrize("write_behind", [False, True])
async def test_async_invocations_wait_for_the_lease_without_blocking_the_loop(
    client_server_url, session_id, write_behind
):
    managers = [
        HTTPSessionManager(
            session_id,
            client_server_url,
            exclusive=True,
            lease_wait=30,
            write_behind=write_behind,
        )
        for _ in range(2)
    ]
    agents = [
        Agent(model=EchoModel(0.3), agent_id="shared", session_manager=m, callback_handler=None)
        for m in managers
    ]
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    try:
        await asyncio.gather(agents[0].invoke_async("first"), agents[1].invoke_async("second"))
        elapsed = time.monotonic() - started
    finally:
        ticker.cancel()
        for manager in managers:
            manager.close()
    # Two 0.3 s turns one after the other; the loop kept ticking the whole time.
    assert ticks >= elapsed / 0.01 / 4, (ticks, elapsed)
    prompts = check_whole_turns(stored(client_server_url, session_id))
    assert sorted(prompts) == ["first", "second"]


def test_a_graph_holds_the_lease_for_its_invocation(client_server_url, session_id):
    from client_support import ScriptedModel

    lease_url = f"{client_server_url}/api/v1/sessions/{session_id}/lease"
    with HTTPSessionManager(
        session_id, client_server_url, exclusive=True, lease_wait=0.5
    ) as manager:
        graph = build_graph(
            manager, ScriptedModel([text("a done")] * 2), ScriptedModel([text("b done")] * 2)
        )
        other = httpx.post(lease_url, json={"holder": "someone else"}).json()
        with pytest.raises(SessionBusyError):
            graph("go")
        httpx.delete(lease_url, headers={"X-Session-Lease": str(other["token"])})
        result = graph("go")
        assert result.status.value == "completed"
        assert httpx.get(lease_url).status_code == 404  # released after the invocation
    state = httpx.get(f"{client_server_url}/api/v1/sessions/{session_id}/multi-agents/pipeline")
    assert state.json()["state"]["status"] == "completed"
