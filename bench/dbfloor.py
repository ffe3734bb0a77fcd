"""The database floor: the service's own SQL (`service.queries.Q`) on one raw asyncpg connection.

No pool, no transaction wrapper, no codecs beyond asyncpg's defaults: what PostgreSQL and the
driver cost by themselves for the statements behind GET agent, append message and a restore.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import asyncpg

from service.queries import Q


async def _median_ms(samples: int, call: Any) -> float:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def _measure(
    dsn: str,
    session_id: str,
    agent_id: str,
    insert_agent: str,
    message_text: str,
    histories: dict[str, int],
    samples: int,
    fetch_repeats: int,
) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        read = Q["read_agent"]
        await _median_ms(20, lambda: conn.fetchrow(read, session_id, agent_id))  # prepare, warm
        out: dict[str, Any] = {"samples": samples}
        out["read_agent_median_ms"] = await _median_ms(
            samples, lambda: conn.fetchrow(read, session_id, agent_id)
        )

        next_id = iter(range(10**9))

        def insert() -> Any:
            message_id = next(next_id)
            return conn.fetchrow(
                Q["create_message"],
                session_id,
                insert_agent,
                message_id,
                "user",
                ["text"],
                message_text,
                None,
                f"dbfloor-{session_id}-{message_id}",  # the idempotency key every write records
                b"dbfloor",
                None,  # no X-Session-Lease
            )

        async def insert_in_transaction() -> None:
            async with conn.transaction():
                await insert()

        await _median_ms(20, insert)
        out["create_message_median_ms"] = await _median_ms(samples, insert)
        out["create_message_txn_median_ms"] = await _median_ms(samples, insert_in_transaction)

        query = Q["list_messages_asc"]
        for agent, size in histories.items():
            await conn.fetch(query, session_id, agent, None, 0, size + 1)  # prepare, warm
            times = []
            for _ in range(fetch_repeats):
                started = time.perf_counter()
                rows = await conn.fetch(query, session_id, agent, None, 0, size + 1)
                times.append(time.perf_counter() - started)
                if len(rows) != size:
                    raise RuntimeError(f"{agent}: fetched {len(rows)} rows, expected {size}")
            out[f"fetch_{size}_s"] = statistics.median(times)
        return out
    finally:
        await conn.close()


def measure(
    dsn: str,
    session_id: str,
    agent_id: str,
    insert_agent: str,
    message_text: str,
    histories: dict[str, int],
    samples: int = 500,
    fetch_repeats: int = 5,
) -> dict[str, Any]:
    """Medians of `read_agent`, `create_message` (autocommit: one round trip; and inside
    BEGIN/COMMIT as the service runs it) and the restore fetch of every history
    (agent -> size), all on one connection."""
    return asyncio.run(
        _measure(
            dsn, session_id, agent_id, insert_agent, message_text, histories, samples, fetch_repeats
        )
    )
