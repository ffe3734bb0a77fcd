"""One process running turns of one agent in a shared session; prints its outcomes as JSON.

Usage: python exclusive_worker.py '<json spec>'. Run by test_client_exclusive.py (and
measure_exclusive.py): several of these at once on one session show what the lease prevents.
The spec: base_url, session_id, name, turns, exclusive, lease_ttl, lease_wait, delay (seconds
the model takes per call), go (a file to wait for before the first turn, so that processes
start their turns together).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncGenerator
from typing import Any

from client_support import ScriptedModel, text
from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands_session_client import HTTPSessionManager


class EchoModel(ScriptedModel):
    """Answers `<prompt> saw <n>`: n is how many messages the model was given."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def stream(self, messages: Any, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        prompt = messages[-1]["content"][0].get("text", "?")
        for event in text(f"{prompt} saw {len(messages)}"):
            yield event


def main(spec: dict[str, Any]) -> dict[str, Any]:
    manager = HTTPSessionManager(
        spec["session_id"],
        spec["base_url"],
        exclusive=spec["exclusive"],
        lease_ttl=spec.get("lease_ttl", 30.0),
        lease_wait=spec.get("lease_wait", 30.0),
        max_retry_time=10,
    )
    lease_seconds: list[float] = []
    if manager.exclusive is not None:  # time what each turn spends taking and giving the lease
        lease = manager.exclusive.lease
        acquire_async, release = lease.acquire_async, lease.release

        async def timed_acquire() -> None:
            started = time.perf_counter()
            await acquire_async()
            lease_seconds.append(time.perf_counter() - started)

        def timed_release() -> None:  # the one after construction is not a turn's
            started = time.perf_counter()
            release()
            if lease_seconds:
                lease_seconds[-1] += time.perf_counter() - started

        lease.acquire_async, lease.release = timed_acquire, timed_release  # type: ignore[method-assign]
    agent = Agent(
        model=EchoModel(spec.get("delay", 0.05)),
        agent_id="shared",
        session_manager=manager,
        # A window wider than any run here: every model call is given the whole history.
        conversation_manager=SlidingWindowConversationManager(window_size=1000),
        callback_handler=None,
    )
    print("ready", flush=True)
    go = spec.get("go")
    while go and not os.path.exists(go):
        time.sleep(0.01)
    turns = []
    for i in range(spec["turns"]):
        started = time.perf_counter()
        try:
            agent(f"{spec['name']}#{i}")
            outcome = "ok"
        except Exception as exc:
            outcome = type(exc).__name__
        turns.append(
            {
                "outcome": outcome,
                "seconds": time.perf_counter() - started,
                "lease": dict(manager.exclusive.lease.acquired) if manager.exclusive else None,
            }
        )
    manager.close()
    return {"turns": turns, "lease_seconds": lease_seconds}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
