"""One Strands session backend under the scripted agent of the peer comparison (`bench.peers`).

`python bench/peers_agent.py` reads a JSON spec on stdin and prints one line of JSON. It runs
under the peers' virtual environment (the other backends) or under the project's (this one), so
it imports only Strands, the standard library and the backend it is told to build.

The agent: a scripted model (no network, no delay) with one tool; `turns` turns, every third one
calling the tool (a plain turn stores 2 messages and syncs the agent; a tool turn stores 4).
Persistence time is what the agent spends inside the session manager: every hook callback the
manager registers, and its methods Strands calls directly (`append_message`, `sync_agent`,
`redact_latest_message`, `initialize`), timed without double counting when one calls another.
Per repetition: a fresh session, the total over its turns / turns; the median of the repetitions
is the figure. The restore: an agent whose history holds `restore_messages` messages (stored by
its first turn), then a fresh agent on the same session: the time of its `initialize`.
"""

from __future__ import annotations

import functools
import inspect
import json
import statistics
import sys
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from strands import Agent, tool
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.models import Model

_TIMED_METHODS = ("append_message", "sync_agent", "redact_latest_message", "initialize")


class Timer:
    """Wall time spent inside timed calls; a call made from a timed call is not counted twice."""

    def __init__(self) -> None:
        self.total = 0.0
        self.calls = 0
        self._depth = 0
        self._started = 0.0

    def enter(self) -> None:
        if self._depth == 0:
            self._started = time.perf_counter()
            self.calls += 1
        self._depth += 1

    def leave(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.total += time.perf_counter() - self._started

    def wrap(self, function: Any) -> Any:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                self.enter()
                try:
                    return await function(*args, **kwargs)
                finally:
                    self.leave()

            return timed_async

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.enter()
            try:
                return function(*args, **kwargs)
            finally:
                self.leave()

        return timed


class _TimedRegistry:
    """The agent's hook registry as the session manager sees it: its callbacks come out timed."""

    def __init__(self, registry: Any, timer: Timer) -> None:
        self._registry = registry
        self._timer = timer

    def add_callback(self, event_type: Any, callback: Any, **kwargs: Any) -> None:
        self._registry.add_callback(event_type, self._timer.wrap(callback), **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)


def instrument(manager: Any, timer: Timer) -> Any:
    """Time everything the agent calls on `manager`."""
    for name in _TIMED_METHODS:
        method = getattr(manager, name, None)
        if callable(method):
            setattr(manager, name, timer.wrap(method))
    register = manager.register_hooks
    manager.register_hooks = lambda registry, **kw: register(_TimedRegistry(registry, timer), **kw)
    return manager


class ScriptedModel(Model):
    """Streams canned turns: a tool call every third turn, otherwise a short answer."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.turn = 0
        self.pending_tool = False

    def update_config(self, **model_config: Any) -> None:
        self.config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        return self.config

    async def structured_output(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def stream(self, messages: Any, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        last = messages[-1]["content"] if messages else []
        answering_tool = any("toolResult" in block for block in last)
        if not answering_tool:
            self.turn += 1
        yield {"messageStart": {"role": "assistant"}}
        if not answering_tool and self.turn % 3 == 0:
            use = {"name": "lookup", "toolUseId": f"t{uuid.uuid4().hex[:12]}"}
            yield {"contentBlockStart": {"start": {"toolUse": use}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"key": "weather"}'}}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "tool_use"}}
        else:
            reply = f"turn {self.turn}: " + "a considered answer to the question " * 4
            yield {"contentBlockDelta": {"delta": {"text": reply}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}
        yield {
            "metadata": {
                "usage": {"inputTokens": 10, "outputTokens": 10, "totalTokens": 20},
                "metrics": {"latencyMs": 1},
            }
        }


@tool
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: What to look up.
    """
    return f"{key}: sunny, 21 degrees"


def _agent(manager: Any, messages: list[Any] | None = None) -> Agent:
    return Agent(
        model=ScriptedModel(),
        agent_id="assistant",
        tools=[lookup],
        messages=messages,
        session_manager=manager,
        # Large enough that no turn trims the history: every backend stores the same messages.
        conversation_manager=SlidingWindowConversationManager(window_size=100_000),
        callback_handler=None,
    )


# --- the backends --------------------------------------------------------------------------------


def _loopback(host: str) -> str:
    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
        raise SystemExit(f"refusing a backend that is not on this machine: {host!r}")
    return host


def factory(spec: dict[str, Any]) -> Any:
    """A function of a session id giving a fresh session manager of the backend in `spec`."""
    kind = spec["backend"]
    if kind == "file":
        from strands.session import FileSessionManager

        return lambda sid: FileSessionManager(session_id=sid, storage_dir=spec["dir"])
    if kind == "valkey":
        import valkey
        from strands_valkey_session_manager import ValkeySessionManager

        client = valkey.Valkey(host=_loopback(spec["host"]), port=spec["port"])
        return lambda sid: ValkeySessionManager(session_id=sid, client=client)
    if kind == "snapshot-postgres":
        from strands.session import SnapshotSessionManager
        from strands_postgres_storage import PostgresStorage

        storage = PostgresStorage(_sqlalchemy_url(spec["dsn"]))
        return lambda sid: SnapshotSessionManager(session_id=sid, storage=storage)
    if kind == "postgresql-session-manager":
        from sqlalchemy import create_engine
        from strands_postgresql_session_manager import PostgresSessionManager

        engine = create_engine(_sqlalchemy_url(spec["dsn"]))
        from sqlmodel import SQLModel

        SQLModel.metadata.create_all(engine)  # its tables (sessions, agents, ...), as its README
        return lambda sid: PostgresSessionManager(session_id=sid, engine=engine)
    if kind == "session-sql":
        from sqlalchemy import create_engine
        from strands_session_sql import SQLSessionManager

        engine = create_engine(_sqlalchemy_url(spec["dsn"]))
        return lambda sid: SQLSessionManager(session_id=sid, engine=engine)
    if kind == "this":
        manager_class = _this_manager_class()
        options = {"write_behind": True} if spec.get("write_behind") else {}
        base_url = spec["url"]
        _loopback(base_url.split("//", 1)[1].rsplit(":", 1)[0])
        return lambda sid: manager_class(session_id=sid, base_url=base_url, **options)
    raise SystemExit(f"unknown backend {kind!r}")


def _this_manager_class() -> Any:
    try:  # the client distribution, when installed
        from strands_session_client import HTTPSessionManager
    except ImportError:
        from service.client import HTTPSessionManager
    return HTTPSessionManager


def _sqlalchemy_url(dsn: str) -> str:
    rest = dsn.split("://", 1)[1]
    host = rest.split("@", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    _loopback(host)
    return "postgresql+psycopg2://" + rest


def _close(manager: Any) -> None:
    close = getattr(manager, "close", None)
    if callable(close):
        close()


def run(spec: dict[str, Any]) -> dict[str, Any]:
    make = factory(spec)
    turns, repetitions = spec["turns"], spec["repetitions"]
    prefix = f"peer-{uuid.uuid4().hex[:8]}"

    # Warm-up: connections, tables, statement caches.
    warm = Timer()
    agent = _agent(instrument(make(f"{prefix}-warm"), warm))
    for i in range(3):
        agent(f"warm-up {i}")
    _close(agent._session_manager)

    per_turn: list[float] = []
    turn_times: list[float] = []
    calls: list[int] = []
    for repetition in range(repetitions):
        timer = Timer()
        manager = instrument(make(f"{prefix}-rep{repetition}"), timer)
        agent = _agent(manager)
        timer.total, timer.calls = 0.0, 0  # the turns only, not the new session's set-up
        for turn in range(turns):
            before = timer.total
            agent(f"question {turn}")
            turn_times.append(timer.total - before)
        per_turn.append(timer.total / turns)
        calls.append(timer.calls)
        stored = len(agent.messages)
        _close(manager)

    # Restore: a session whose agent holds `restore_messages` messages, read back by a new agent.
    size = spec["restore_messages"]
    history = [
        {
            "role": ("user", "assistant")[i % 2],
            "content": [{"text": f"message {i}: " + "lorem ipsum dolor sit amet " * 8}],
        }
        for i in range(size - 2)  # the turn below adds 2
    ]
    session_id = f"{prefix}-restore"
    seed = _agent(make(session_id), messages=history)
    seed("the last question")
    _close(seed._session_manager)
    restores = []
    for _ in range(spec["restores"]):
        timer = Timer()
        restored = _agent(instrument(make(session_id), timer))
        if len(restored.messages) != size:
            raise SystemExit(f"restored {len(restored.messages)} messages, expected {size}")
        restores.append(timer.total)
        _close(restored._session_manager)
    return {
        "backend": spec["backend"],
        "write_behind": bool(spec.get("write_behind")),
        "per_turn_ms": statistics.median(per_turn) * 1000,
        "per_turn_ms_repetitions": [round(v * 1000, 4) for v in per_turn],
        "turn_median_ms": statistics.median(turn_times) * 1000,
        "turn_p90_ms": sorted(turn_times)[int(0.9 * len(turn_times))] * 1000,
        "timed_calls_per_turn": statistics.median(calls) / turns,
        "messages_per_session": stored,
        "restore_ms": statistics.median(restores) * 1000,
        "restore_messages": size,
    }


def main() -> int:
    spec = json.loads(sys.stdin.read())
    print(json.dumps(run(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
