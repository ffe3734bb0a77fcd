"""Objects of the Strands `Storage` protocol: bytes under keys (keys already normalised)."""

from __future__ import annotations

import asyncio

import asyncpg

from service.errors import NotFound
from service.objects import score, successor
from service.queries import Q
from service.writes import Key

SCAN_BATCH = 500  # keys per cursor fetch while searching
SEARCH_GROUP_BYTES = 4 * 1024 * 1024  # values read and scored at once (one, when larger)


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
    conn: asyncpg.Connection, prefix: str, words: set[str], limit: int, with_data: bool
) -> list[tuple[str, int, bytes | None]]:
    """The `limit` best (key, score, data) under `prefix`, best first, ties in key order; data
    only `with_data`.

    Memory stays flat whatever the objects' sizes: the scan reads keys and sizes through a
    cursor, values are read and scored a group of about SEARCH_GROUP_BYTES at a time (scored
    off the event loop) and dropped, only (key, score) pairs are kept, and the values of the
    final hits alone are read at the end.
    """
    upper = successor(prefix)
    query, args = (
        (Q["scan_objects_unbounded"], (prefix,))
        if upper is None
        else (Q["scan_objects"], (prefix, upper))
    )
    best: list[tuple[str, int]] = []
    group: list[str] = []
    group_bytes = 0

    async def score_group() -> None:
        nonlocal best, group, group_bytes
        rows = await conn.fetch(Q["read_objects"], group)
        entries = [(row["key"], row["data"]) for row in rows]
        del rows
        found = await asyncio.to_thread(score, words, entries, len(prefix))
        del entries
        # A stable sort: equal scores stay in key order, earlier keys first.
        best = sorted([*best, *((key, hits) for key, hits, _ in found)], key=lambda h: -h[1])
        best = best[:limit]
        group, group_bytes = [], 0

    cursor = await conn.cursor(query, *args)
    while rows := await cursor.fetch(SCAN_BATCH):
        for row in rows:
            if group and group_bytes + row["size"] > SEARCH_GROUP_BYTES:
                await score_group()
            group.append(row["key"])
            group_bytes += row["size"]
    if group:
        await score_group()
    if not with_data or not best:
        return [(key, hits, None) for key, hits in best]
    data = {
        row["key"]: row["data"] for row in await conn.fetch(Q["read_objects"], [k for k, _ in best])
    }
    return [(key, hits, data.get(key, b"")) for key, hits in best]
