"""`python -m service prune --older-than AGE [--dry-run]`: retention by last activity."""

from __future__ import annotations

import asyncpg
import pytest

from tests.test_process import run_module

OLD = ["old-1", "old-2", "old-3", "old-4", "old-5"]
# Old sessions with something recent under them: not old.
ACTIVE = ["recent-agent", "recent-message", "recent-multi", "fresh"]

SETUP = """
INSERT INTO sessions (session_id, session_type) SELECT id, 'AGENT' FROM unnest($1::text[]) id;
INSERT INTO agents (session_id, agent_id, state, conversation_manager_state)
SELECT session_id, 'a', '{}', '{}' FROM sessions;
INSERT INTO messages (session_id, agent_id, message_id, role, content_types, message)
SELECT session_id, 'a', g, 'user', '{text}', '{"role":"user","content":[]}'
  FROM sessions, generate_series(0, 2) g;
INSERT INTO multi_agents (session_id, multi_agent_id, state)
SELECT session_id, 'g', '{}' FROM sessions;
UPDATE sessions SET updated_at = now() - interval '40 days' WHERE session_id <> 'fresh';
UPDATE agents SET updated_at = now() - interval '40 days' WHERE session_id <> 'recent-agent';
UPDATE messages SET updated_at = now() - interval '40 days'
 WHERE session_id <> 'recent-message' OR message_id <> 1;
UPDATE multi_agents SET updated_at = now() - interval '40 days' WHERE session_id <> 'recent-multi';
"""


async def _sessions(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r[0] for r in await conn.fetch("SELECT session_id FROM sessions")}
    finally:
        await conn.close()


async def _setup(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in SETUP.split(";\n"):
            if statement.strip():
                args = [OLD + ACTIVE] if "$1" in statement else []
                await conn.execute(statement, *args)
    finally:
        await conn.close()


async def test_prune_removes_exactly_the_sessions_inactive_for_that_long(database_url):
    await _setup(database_url)
    env = {"DATABASE_URL": database_url}
    dry = run_module("prune", "--older-than", "30d", "--dry-run", "--batch-size", "2", env=env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == OLD  # one id a line, in id order, across batches
    assert "would remove 5 session(s)" in dry.stderr
    assert await _sessions(database_url) == set(OLD + ACTIVE)

    kept_by_age = run_module("prune", "--older-than", "41d", env=env)
    assert kept_by_age.returncode == 0 and kept_by_age.stdout == ""

    real = run_module("prune", "--older-than", "720h", "--batch-size", "2", env=env)
    assert real.returncode == 0, real.stderr
    assert real.stdout.splitlines() == OLD
    assert await _sessions(database_url) == set(ACTIVE)
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM messages") == 3 * len(ACTIVE)
    finally:
        await conn.close()

    everything = run_module("prune", "--older-than", "0s", env=env)
    assert sorted(everything.stdout.splitlines()) == sorted(ACTIVE)
    assert await _sessions(database_url) == set()


@pytest.mark.parametrize("age", ["30", "1.5h", "3x", "99999999d"])
def test_a_bad_age_exits_2_saying_why(age):
    result = run_module(
        "prune", "--older-than", age, env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    )
    assert result.returncode == 2
    assert "--older-than" in result.stderr
    assert "age" in result.stderr and "d" in result.stderr
