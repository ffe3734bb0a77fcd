"""Where a write-behind turn's persistence time goes, beside the floor of a durable turn.

`python -m bench.turnfloor [--turns 60] [--repetitions 3]` runs the peer comparison's scripted
agent (`bench/peers_agent.py`: same model, same tool, same timing of the session manager's
hooks) with `HTTPSessionManager(write_behind=True)` against a `python -m service` on a fresh
database, and splits each turn's persistence time into the end-of-invocation barrier (waiting
for the turn's writes to be stored) and everything else (the hooks' own work: Strands' sync
checks, snapshots, queueing). After every turn, interleaved, it times the floor of a durable
turn on the same server: one raw HTTP/1.1 round trip (`http.client`, a kept-alive connection)
that appends the turn's messages as one batch, committed; a bare round trip to `/health/live`
(no database); and the same batch append through the client's repository (httpx and the
client's own code). Medians, in ms per turn. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import peers_agent, servers
from bench.peers import _database


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 3)


def measure(url: str, turns: int, repetitions: int) -> dict[str, Any]:
    from strands.types.session import Session, SessionAgent, SessionMessage, SessionType
    from strands_session_client import HTTPSessionManager, HTTPSessionRepository

    barrier: list[float] = []

    class Timed(HTTPSessionManager):
        async def _barrier(self) -> None:
            started = time.perf_counter()
            try:
                await super()._barrier()
            finally:
                barrier.append(time.perf_counter() - started)

    host, port = url.split("//", 1)[1].rsplit(":", 1)
    raw = http.client.HTTPConnection(host, int(port))
    repo = HTTPSessionRepository(url)
    floor_session = f"floor-{uuid.uuid4().hex[:8]}"
    repo.create_session(Session(session_id=floor_session, session_type=SessionType.AGENT))
    repo.create_agent(floor_session, SessionAgent("a", {}, {}))
    batch_path = f"/api/v1/sessions/{floor_session}/agents/a/messages/batch"
    next_id = 0

    def two_messages() -> list[SessionMessage]:
        nonlocal next_id
        text = "a considered answer to the question " * 4
        made = [
            SessionMessage({"role": role, "content": [{"text": f"{next_id + i}: {text}"}]}, i)
            for i, role in enumerate(("user", "assistant"))
        ]
        for i, message in enumerate(made):
            message.message_id = next_id + i
        next_id += 2
        return made

    def raw_request(method: str, path: str, body: bytes | None = None) -> int:
        headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
        raw.request(method, path, body=body, headers=headers)
        response = raw.getresponse()
        response.read()
        return response.status

    per_turn, hooks, waits = [], [], []
    floors: dict[str, list[float]] = {"raw_append": [], "raw_live": [], "client_append": []}
    for repetition in range(repetitions):
        timer = peers_agent.Timer()
        manager = peers_agent.instrument(
            Timed(
                session_id=f"turnfloor-{uuid.uuid4().hex[:8]}-{repetition}",
                base_url=url,
                write_behind=True,
            ),
            timer,
        )
        agent = peers_agent._agent(manager)
        for turn in range(turns + 3):
            barrier.clear()
            before = timer.total
            agent(f"question {turn}")
            if turn < 3:  # warm-up
                continue
            spent = timer.total - before
            per_turn.append(spent)
            waits.append(sum(barrier))
            hooks.append(spent - sum(barrier))
            body = json.dumps({"messages": [m.to_dict() for m in two_messages()]}).encode()
            started = time.perf_counter()
            assert raw_request("POST", batch_path, body) == 201
            floors["raw_append"].append(time.perf_counter() - started)
            started = time.perf_counter()
            assert raw_request("GET", "/health/live") == 200
            floors["raw_live"].append(time.perf_counter() - started)
            messages = two_messages()
            started = time.perf_counter()
            repo.create_messages(floor_session, "a", messages)
            floors["client_append"].append(time.perf_counter() - started)
        manager.close()
    raw.close()
    repo.close()
    return {
        "turns": len(per_turn),
        "per_turn_ms": _median_ms(per_turn),
        "barrier_ms": _median_ms(waits),
        "hooks_ms": _median_ms(hooks),
        "floor_raw_batch_append_ms": _median_ms(floors["raw_append"]),
        "floor_raw_round_trip_ms": _median_ms(floors["raw_live"]),
        "client_batch_append_ms": _median_ms(floors["client_append"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.turnfloor", description=__doc__)
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-turnfloor-") as scratch,
        servers.admin_dsn() as (admin, _source),
        _database(admin) as dsn,
        servers.service("turnfloor-service", dsn, Path(scratch)) as service,
    ):
        print(json.dumps(measure(service.url, args.turns, args.repetitions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
