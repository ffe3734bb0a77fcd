"""Measure what an agent waits for in session work, and what a manager costs to build.

    python tests/client/measure_write_behind.py --url http://127.0.0.1:8000 [--delay 0.02]

Puts a proxy adding `--delay` seconds per request in front of the service, then:
- runs `--turns` tool turns (a scripted model taking `--model-time` per call) with and without
  `write_behind`, and prints the median time per turn the agent spent in the session hooks;
- runs the same turns with `invoke_async` while a 1 ms ticker measures the event loop's lag;
- times building a `HTTPSessionRepository` (no request), and a `HTTPSessionManager` (one GET
  against the proxy-free URL, the session existing).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from strands import Agent
from strands_session_client import HTTPSessionManager, HTTPSessionRepository

from tests.client import test_client_write_behind as wb
from tests.client.client_support import add
from tests.client.slow_proxy import SlowProxy


def session_time(url: str, write_behind: bool, turns: int) -> list[float]:
    with wb.TimedManager(f"m-{uuid.uuid4().hex}", url, write_behind=write_behind) as manager:
        agent = Agent(
            model=wb.SlowModel(wb.tool_turns(turns + 1)),
            tools=[add],
            session_manager=manager,
            callback_handler=None,
        )
        agent("warm up")  # the first turn also creates the agent
        times = []
        for n in range(turns):
            manager.session_seconds = 0.0
            agent(f"add {n} and 1")
            times.append(manager.session_seconds)
    return times


async def loop_lag(url: str, write_behind: bool | None, turns: int) -> list[float]:
    """The loop's lag over `turns` tool turns; `write_behind=None`: no session manager at all
    (the machine's own noise, as a baseline)."""
    manager = (
        None
        if write_behind is None
        else HTTPSessionManager(f"lag-{uuid.uuid4().hex}", url, write_behind=write_behind)
    )
    agent = Agent(
        model=wb.SlowModel(wb.tool_turns(turns + 1)),
        tools=[add],
        session_manager=manager,
        callback_handler=None,
    )
    await agent.invoke_async("warm up")  # first-call imports and thread start-up
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - started - 0.001)

    task = asyncio.create_task(ticker())
    for n in range(turns):
        await agent.invoke_async(f"add {n} and 1")
    done.set()
    await task
    if manager is not None:
        manager.close()
    return lags


def construction(url: str, count: int = 200) -> tuple[list[float], list[float]]:
    repositories, managers = [], []
    session_id = f"build-{uuid.uuid4().hex}"
    HTTPSessionManager(session_id, url).close()
    for _ in range(count):
        started = time.perf_counter()
        HTTPSessionRepository(url).close()
        repositories.append(time.perf_counter() - started)
        started = time.perf_counter()
        HTTPSessionManager(session_id, url).close()
        managers.append(time.perf_counter() - started)
    return repositories, managers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--model-time", type=float, default=0.12)
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    wb.MODEL_TIME = args.model_time
    proxy = SlowProxy(int(args.url.rsplit(":", 1)[1]), delay=args.delay)
    try:
        print(f"proxy adds {args.delay * 1000:.0f} ms per request; model call {args.model_time}s")
        for write_behind in (False, True):
            times = session_time(proxy.url, write_behind, args.turns)
            label = "write-behind" if write_behind else "synchronous "
            print(
                f"{label} session time per tool turn: median {statistics.median(times) * 1000:.1f}"
                f" ms, max {max(times) * 1000:.1f} ms (n={len(times)})"
            )
        for mode in (None, False, True):
            lags = sorted(asyncio.run(loop_lag(proxy.url, mode, args.turns)))
            label = {None: "no session  ", False: "synchronous ", True: "write-behind"}[mode]
            print(
                f"{label} event-loop lag during invoke_async: max {lags[-1] * 1000:.2f} ms,"
                f" p99 {lags[int(len(lags) * 0.99)] * 1000:.2f} ms,"
                f" median {statistics.median(lags) * 1000:.3f} ms (n={len(lags)});"
                f" worst five {[round(lag * 1000, 1) for lag in lags[-5:]]}"
            )
    finally:
        proxy.close()
    repositories, managers = construction(args.url)
    print(f"HTTPSessionRepository(): median {statistics.median(repositories) * 1e6:.0f} µs")
    print(
        "HTTPSessionManager() of an existing session (one GET, no proxy):"
        f" median {statistics.median(managers) * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
