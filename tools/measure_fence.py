"""Measure what the session-lease fence adds to a message append (the hot write path).

    .venv/bin/python tools/measure_fence.py [--appends 2000] [--dsn DSN]

DSN is a PostgreSQL the tool may create a database on (default: TEST_DATABASE_URL, else
postgresql://postgres@127.0.0.1:5432/postgres). On a fresh migrated database it runs, on one
connection and interleaved so that load on the machine affects all alike, the service's own
`create_message` statement three ways: with the fence line removed (the statement as it was
before leases), with the fence and no lease on the session, and with the fence, a live lease
and its token. It prints the median of each. The database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service import migrate
from service.db import init_connection
from service.queries import Q

MESSAGE = b'{"role": "user", "content": [{"text": "a message of a usual size, give or take"}]}'


def _database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


def _without_fence(sql: str) -> str:
    stripped = re.sub(r"\n\s*AND \(SELECT session_write_fence\(\$1, \$\d+::bigint\)\)", "", sql)
    assert stripped != sql and "session_write_fence" not in stripped
    return stripped


async def measure(admin: str, appends: int) -> None:
    name = f"measure_fence_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = _database(admin, name)
        await asyncio.to_thread(migrate.apply, dsn)
        db = await asyncpg.connect(dsn)
        await init_connection(db)
        free, leased = "free", "leased"
        for sid in (free, leased):
            await db.execute(
                "INSERT INTO sessions (session_id, session_type) VALUES ($1, 'AGENT')", sid
            )
            await db.execute(
                "INSERT INTO agents (session_id, agent_id, state, conversation_manager_state) "
                "VALUES ($1, 'a', '{}', '{}')",
                sid,
            )
        lease = await db.fetchrow(Q["acquire_lease"], leased, "measure", 3600.0, "k", b"f")
        next_id = iter(range(10**9))
        before = _without_fence(Q["create_message"])

        async def append(sql: str, sid: str, *token: int | None) -> float:
            started = time.perf_counter()
            args = (sid, "a", next(next_id), "user", ["text"], MESSAGE, None, uuid.uuid4().hex)
            await db.fetchrow(sql, *args, b"fingerprint", *token)
            return time.perf_counter() - started

        runs: dict[str, list[float]] = {
            "without the fence": [],
            "fence, no lease": [],
            "fence, live lease and its token": [],
        }
        for i in range(appends + 100):  # the first 100 warm up
            timed = (
                await append(before, free),
                await append(Q["create_message"], free, None),
                await append(Q["create_message"], leased, lease["token"]),
            )
            if i >= 100:
                for samples, seconds in zip(runs.values(), timed, strict=True):
                    samples.append(seconds)
        await db.close()
        for label, samples in runs.items():
            print(f"create_message, {label}: median {statistics.median(samples) * 1000:.3f} ms")
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument(
        "--dsn",
        default=os.environ.get(
            "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    asyncio.run(measure(args.dsn, args.appends))


if __name__ == "__main__":
    main()
