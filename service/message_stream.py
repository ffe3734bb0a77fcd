"""An agent's messages as one NDJSON stream (docs/api.md, "Streaming a message list").

The messages are read 1,000 at a time through the pages' own query, each read a statement of
its own, as a page is: a stream sees what walking the pages sees, and a reader that stalls
holds no pooled connection. Each read starts before the previous rows are encoded and sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import orjson

from service.db import Database
from service.http import NDJSONStream
from service.models import message_items
from service.store import messages as store

READ = 1000  # messages per read: a full page's worth
# Lines per chunk sent (~115 KB of 1 KB messages). A read's 1.15 MB in one piece would be a
# fresh mapping from the allocator every time: ~1,100 page faults, 6 ms, against 0.6 ms for
# its lines in chunks of this size, whose memory is reused.
CHUNK = 100

_LINE = orjson.OPT_APPEND_NEWLINE
_Read = Callable[[int | None, int, int], Awaitable[list[Any]]]


async def stream_messages(
    db: Database,
    send_timeout: float,
    session_id: str,
    agent_id: str,
    after: int | None,
    offset: int,
    limit: int | None,
    descending: bool,
) -> NDJSONStream:
    """Every message from the position on (`limit` of them when given), a message a line. The
    first read happens here, so a missing session or agent is 404 before anything is sent."""

    def read(after: int | None, offset: int, count: int) -> Awaitable[list[Any]]:
        return db.run(store.list_messages, session_id, agent_id, after, offset, count, descending)

    asked = READ if limit is None else min(READ, limit)
    rows = await read(after, offset, asked + 1)  # one more tells whether the list goes on
    chunks = _chunks(read, rows, asked, limit)
    first = await anext(chunks, b"")  # no chunk at all: an empty stream
    return NDJSONStream(first, chunks, send_timeout)


async def _chunks(
    read: _Read, rows: list[Any], asked: int, left: int | None
) -> AsyncGenerator[bytes, None]:
    """The lines of the first `asked` of `rows` (read with one more), then of each further
    read, until a read finds no more or `left` messages are out."""
    ahead: asyncio.Task[list[Any]] | None = None
    try:
        while True:
            more, rows = len(rows) > asked, rows[:asked]
            left = None if left is None else left - len(rows)
            if more and left != 0:
                asked = READ if left is None else min(READ, left)
                ahead = asyncio.ensure_future(read(rows[-1]["message_id"], 0, asked + 1))
                await asyncio.sleep(0)  # the read goes out before the encoding holds the loop
            items = message_items(rows)
            for start in range(0, len(items), CHUNK):
                yield b"".join(
                    [orjson.dumps(item, option=_LINE) for item in items[start : start + CHUNK]]
                )
            if ahead is None:
                return
            rows, ahead = await ahead, None
    finally:
        if ahead is not None:  # the reader went away (or the stream was cut off)
            ahead.cancel()
            await asyncio.gather(ahead, return_exceptions=True)
