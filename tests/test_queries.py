"""Guards on the SQL: every named query prepares; hot queries use the intended index."""

from __future__ import annotations

import asyncpg
import pytest

from service.db import init_connection
from service.queries import Q, load


async def test_every_named_query_prepares_against_the_migrated_schema(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        await init_connection(conn)
        for name, sql in Q.items():
            try:
                await conn.prepare(sql)
            except asyncpg.PostgresError as exc:
                pytest.fail(f"query {name} does not prepare: {exc}")
    finally:
        await conn.close()


def test_loader_refuses_duplicates_and_multiple_statements(tmp_path):
    (tmp_path / "a.sql").write_text("-- name: x\n-- d\nSELECT 1;\n-- name: x\nSELECT 2;\n")
    with pytest.raises(ValueError, match="twice"):
        load(tmp_path)
    (tmp_path / "a.sql").write_text("-- name: y\nSELECT 1; SELECT 2;\n")
    with pytest.raises(ValueError, match="exactly one"):
        load(tmp_path)


async def _plan(conn: asyncpg.Connection, sql: str, *args: object) -> str:
    rows = await conn.fetch("EXPLAIN " + sql, *args)
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize(
    "name,args",
    [
        ("list_messages_asc", ("s", "a", None, 0, 101)),
        ("list_messages_asc", ("s", "a", 5000, 0, 101)),
        ("list_messages_desc", ("s", "a", 5000, 0, 101)),
        ("list_messages_desc", ("s", "a", None, 0, 101)),
        ("read_message", ("s", "a", 7)),
    ],
)
# Prepared statements switch to a generic plan after five runs: guard that plan too.
@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
async def test_message_queries_use_the_primary_key(database_url, name, args, plan_mode):
    conn = await asyncpg.connect(database_url)
    try:
        await init_connection(conn)
        await conn.execute(f"SET plan_cache_mode = {plan_mode}")
        await conn.execute("INSERT INTO sessions (session_id, session_type) VALUES ('s','AGENT')")
        await conn.execute(
            "INSERT INTO agents (session_id, agent_id, state,"
            " conversation_manager_state) VALUES ('s','a','{}','{}')"
        )
        await conn.execute(
            "INSERT INTO messages (session_id, agent_id, message_id, role, content_types,"
            " message) SELECT 's', 'a', g, 'user', '{text}', '{\"role\":\"user\"}'"
            " FROM generate_series(0, 9999) g"
        )
        await conn.execute("ANALYZE messages")
        plan = await _plan(conn, Q[name], *args)
        assert "messages_pkey" in plan, plan
        assert "Seq Scan" not in plan and "Sort" not in plan, plan
        # the cursor bounds the index scan; it is not a filter over the whole history
        filters = [line for line in plan.splitlines() if "Filter:" in line]
        assert not any("message_id" in line for line in filters), plan
    finally:
        await conn.close()
