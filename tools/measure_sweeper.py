"""Measure the expiry sweeper: expired sessions deleted per second (each with its messages).

    .venv/bin/python tools/measure_sweeper.py [--sessions 2000] [--messages 100]
                                              [--batch-size 100 --batch-size 1000] [--dsn DSN]

DSN is a PostgreSQL the tool may create a database on (default: TEST_DATABASE_URL, else
postgresql://postgres@127.0.0.1:5432/postgres). For each batch size it builds a fresh migrated
database, fills it with SESSIONS expired sessions of one agent, MESSAGES messages (about 250
bytes of JSON each) and one multi-agent state, then runs the service's own `sweeper.sweep` on
one connection, as a replica does, and prints the rate. The database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service import migrate
from service.sweeper import sweep

FILL = """
INSERT INTO sessions (session_id, session_type, expires_at)
SELECT 's' || g, 'AGENT', now() - interval '1 minute' FROM generate_series(1, {sessions}) g;
INSERT INTO agents (session_id, agent_id, state, conversation_manager_state)
SELECT session_id, 'assistant', '{{"k":"v"}}',
       '{{"__name__":"SlidingWindowConversationManager","removed_message_count":0}}'
  FROM sessions;
INSERT INTO messages (session_id, agent_id, message_id, role, content_types, message)
SELECT a.session_id, a.agent_id, g, CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END,
       '{{text}}', ('{{"role":"user","content":[{{"text":"' || repeat('lorem ipsum ', 18) ||
       g || '"}}]}}')::json
  FROM agents a, generate_series(0, {messages} - 1) g;
INSERT INTO multi_agents (session_id, multi_agent_id, state)
SELECT session_id, 'graph', '{{}}' FROM sessions;
ANALYZE
"""


def _database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


async def measure(admin: str, sessions: int, messages: int, batch_size: int) -> None:
    name = f"measure_sweeper_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    dsn = _database(admin, name)
    try:
        await asyncio.to_thread(migrate.apply, dsn)
        db = await asyncpg.connect(dsn)
        try:
            started = time.perf_counter()
            for statement in FILL.format(sessions=sessions, messages=messages).split(";\n"):
                await db.execute(statement)
            filled = time.perf_counter() - started
            started = time.perf_counter()
            outcome = await sweep(db, batch_size)
            seconds = time.perf_counter() - started
            assert outcome is not None and outcome[0] == sessions, outcome
            left = await db.fetchval("SELECT count(*) FROM messages")
            assert left == 0, left
        finally:
            await db.close()
        print(
            f"batch {batch_size:5d}: {sessions} sessions x {messages} messages "
            f"(filled in {filled:.1f}s) swept in {seconds:.2f}s in {outcome[1]} batches: "
            f"{sessions / seconds:,.0f} sessions/s, {sessions * messages / seconds:,.0f} "
            f"messages/s, {seconds / outcome[1] * 1000:.0f} ms a batch"
        )
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--batch-size", type=int, action="append", dest="batch_sizes")
    parser.add_argument(
        "--dsn",
        default=os.environ.get(
            "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    for batch_size in args.batch_sizes or [100]:
        asyncio.run(measure(args.dsn, args.sessions, args.messages, batch_size))


if __name__ == "__main__":
    main()
