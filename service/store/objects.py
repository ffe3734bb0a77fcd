"""Objects of the Strands `Storage` protocol: bytes under keys (keys already normalised)."""

from __future__ import annotations

import asyncio

import asyncpg

from service.errors import NotFound
from service.objects import score, successor
from service.queries import Q
from service.writes import Key

SCAN_BATCH = 200  # rows per cursor fetch while searching


async def write_object(
    conn: asyncpg.Connection, write_key: Key, key: str, data: bytes
) -> tuple[int, None]:
    await conn.execute(Q["write_object"], key, data, write_key.value, write_key.fingerprint)
    return 204, None


async def read_object(conn: asyncpg.Connection, key: str) -> bytes:
    data = await conn.fetchval(Q["read_object"], key)
    if data is None:
        raise NotFound(f"no storage object under key {key!r}")
    return data  # type: ignore[no-any-return]


async def delete_object(conn: asyncpg.Connection, write_key: Key, key: str) -> tuple[int, None]:
    await conn.execute(Q["delete_object"], key, write_key.value, write_key.fingerprint)
    return 204, None


async def list_objects(conn: asyncpg.Connection, prefix: str, after: str, limit: int) -> list[str]:
    """Up to `limit` keys starting with `prefix`, after `after`, in key order."""
    upper = successor(prefix)
    if upper is None:
        rows = await conn.fetch(Q["list_objects_unbounded"], prefix, after, limit)
    else:
        rows = await conn.fetch(Q["list_objects"], prefix, after, upper, limit)
    return [row["key"] for row in rows]


async def search_objects(
    conn: asyncpg.Connection, prefix: str, words: set[str], limit: int
) -> list[tuple[str, int, bytes]]:
    """The `limit` best (key, score, data) under `prefix`: a cursor scan, scored off the
    event loop, keeping only the best `limit` as it goes."""
    upper = successor(prefix)
    query, args = (
        (Q["scan_objects_unbounded"], (prefix,))
        if upper is None
        else (Q["scan_objects"], (prefix, upper))
    )
    best: list[tuple[str, int, bytes]] = []
    cursor = await conn.cursor(query, *args)
    while rows := await cursor.fetch(SCAN_BATCH):
        entries = [(row["key"], row["data"]) for row in rows]
        best += await asyncio.to_thread(score, words, entries, len(prefix))
        # A stable sort: equal scores stay in key order, earlier keys first.
        best = sorted(best, key=lambda hit: -hit[1])[:limit]
    return best
