"""`message_items` (a list page's items) gives exactly what `message_body` gives for each row:
for rows of the list query (timestamps formatted by PostgreSQL) and for rows carrying
datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import orjson

from service.db import init_connection
from service.models import message_body, message_items
from service.queries import Q


async def test_items_are_the_message_bodies_of_the_rows(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        await init_connection(conn)
        await conn.execute("INSERT INTO sessions (session_id, session_type) VALUES ('s', 'AGENT')")
        await conn.execute(
            "INSERT INTO agents (session_id, agent_id, state, conversation_manager_state)"
            " VALUES ('s', 'a', '{}', '{}')"
        )
        await conn.execute(
            "INSERT INTO messages (session_id, agent_id, message_id, role, content_types,"
            " message, redact_message) SELECT 's', 'a', g, 'user', '{text}',"
            ' (\'{"z":1,"role":"user","content":[{"text":"m\' || g || \'"}]}\')::json,'
            ' CASE WHEN g % 2 = 0 THEN \'{"role":"user","content":[]}\'::json END'
            " FROM generate_series(0, 4) g"
        )
        rows = await conn.fetch(Q["list_messages_asc"], "s", "a", None, 0, 10)
    finally:
        await conn.close()
    assert len(rows) == 5
    items = message_items(rows)
    assert orjson.dumps(items) == orjson.dumps([message_body(r) for r in rows])
    assert list(items[0]) == [
        "message_id",
        "message",
        "redact_message",
        "version",
        "created_at",
        "updated_at",
    ]
    assert orjson.dumps(items[1]["message"]).startswith(b'{"z":1,')  # stored text, as stored
    at = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    dated = [{**dict(r), "created_at": at, "updated_at": at} for r in rows]
    assert orjson.dumps(message_items(dated)) == orjson.dumps([message_body(r) for r in dated])
    assert message_items([]) == []
