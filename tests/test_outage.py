"""Outage drills against a real `python -m service` on a PostgreSQL of the test's own, which
the test stops and starts: nothing acknowledged is lost, nothing is a 500, 503s say when to retry,
and the service recovers by itself."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
import psycopg
import pytest

from service.embedded import EmbeddedPostgres
from tests.support import free_port, with_database

S = "/api/v1/sessions"
WRITERS = 6
OUTAGE_SECONDS = 5.0


@pytest.fixture
def own_postgres(tmp_path):
    server = EmbeddedPostgres(tmp_path / "pg", port=free_port())
    admin = server.start()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE drill")
    yield server, with_database(admin, "drill")
    server.stop()


@dataclass
class Tally:
    attempted: int = 0
    acknowledged: dict[tuple[int, int], dict] = field(default_factory=dict)
    unavailable: int = 0
    without_retry_after: int = 0
    errors: list[str] = field(default_factory=list)
    slowest: float = 0.0
    last_failure: float = 0.0
    first_success_after_restart: float | None = None


def message(writer: int, n: int) -> dict:
    return {
        "role": "user",
        "content": [{"text": f"writer {writer} message {n} \u0000 ✓"}],
        "metadata": {"n": n, "big": 2**60 + n},
    }


async def writer(
    http: httpx.AsyncClient, w: int, tally: Tally, until: float, restarted: asyncio.Event
) -> None:
    n = 0
    while time.monotonic() < until:
        body = {"message_id": n, "message": message(w, n)}
        tally.attempted += 1
        started = time.monotonic()
        try:
            r = await http.post(f"{S}/drill/agents/w{w}/messages", json=body)
        except httpx.TransportError as exc:
            tally.errors.append(f"transport: {exc!r}")
            await asyncio.sleep(0.2)
            continue
        tally.slowest = max(tally.slowest, time.monotonic() - started)
        if r.status_code in (200, 201):
            tally.acknowledged[(w, n)] = body["message"]
            if restarted.is_set() and tally.first_success_after_restart is None:
                tally.first_success_after_restart = time.monotonic()
            n += 1  # the next message only once this one is acknowledged, as Strands does
        elif r.status_code == 503:
            tally.unavailable += 1
            tally.without_retry_after += "retry-after" not in r.headers
            tally.last_failure = time.monotonic()
            await asyncio.sleep(0.2)
        else:
            tally.errors.append(f"{r.status_code}: {r.text[:200]}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.01)


async def test_writers_lose_nothing_while_postgres_stops_and_starts(own_postgres, service_process):
    server, dsn = own_postgres
    proc = service_process({"DATABASE_URL": dsn, "DB_CONNECT_DEADLINE_SECONDS": "30"})
    async with httpx.AsyncClient(
        base_url=proc.url, timeout=20, limits=httpx.Limits(max_connections=WRITERS + 2)
    ) as http:
        assert (await http.post(S, json={"session_id": "drill"})).status_code == 201
        for w in range(WRITERS):
            r = await http.post(
                f"{S}/drill/agents",
                json={"agent_id": f"w{w}", "state": {}, "conversation_manager_state": {}},
            )
            assert r.status_code == 201

        tally, restarted = Tally(), asyncio.Event()
        until = time.monotonic() + 3 + OUTAGE_SECONDS + 6
        writers = [
            asyncio.create_task(writer(http, w, tally, until, restarted)) for w in range(WRITERS)
        ]
        await asyncio.sleep(3)
        await asyncio.to_thread(server.stop)
        stopped_at = time.monotonic()
        await asyncio.sleep(1.5)
        assert (await http.get("/health/live")).status_code == 200
        ready = await http.get("/health/ready")
        assert ready.status_code == 503 and "retry-after" in ready.headers
        await asyncio.sleep(OUTAGE_SECONDS - 1.5)
        await asyncio.to_thread(server.start)
        restart_at = time.monotonic()
        restarted.set()
        ready_after = None
        while time.monotonic() - restart_at < 10:
            if (await http.get("/health/ready")).status_code == 200:
                ready_after = time.monotonic() - restart_at
                break
            await asyncio.sleep(0.1)
        await asyncio.gather(*writers)

        assert ready_after is not None, "not ready within 10 s of the database's return"
        assert not tally.errors, tally.errors[:5]
        assert tally.unavailable > 0, "the outage was never noticed"
        assert tally.without_retry_after == 0
        assert tally.slowest < 15
        assert tally.first_success_after_restart is not None

        found = 0
        for (w, n), stored in tally.acknowledged.items():
            got = await http.get(f"{S}/drill/agents/w{w}/messages/{n}")
            assert got.status_code == 200 and got.json()["message"] == stored
            found += 1
        listed = 0
        for w in range(WRITERS):
            page = await http.get(f"{S}/drill/agents/w{w}/messages", params={"limit": 1000})
            ids = [m["message_id"] for m in page.json()["items"]]
            assert ids == list(range(len(ids)))  # dense: nothing half-written, no gaps
            listed += len(ids)
        print(
            f"\noutage drill: attempted={tally.attempted} acknowledged="
            f"{len(tally.acknowledged)} found={found} stored={listed} 503s={tally.unavailable}"
            f" outage={restart_at - stopped_at:.1f}s ready_after_restart={ready_after:.2f}s"
            f" first_write_after_restart="
            f"{tally.first_success_after_restart - restart_at:.2f}s"
            f" slowest_answer={tally.slowest:.2f}s"
        )
        # A write may commit while its answer is lost to the outage; it is then stored without
        # an acknowledgement, and its retry (same id, same body) answers 200.
        assert listed >= len(tally.acknowledged)
    assert "unhandled error" not in proc.output()
