"""The expiry sweeper: two real `python -m service` replicas on one database sweep exactly the
expired sessions (with everything under them), only while holding the advisory lock, and count
them in /metrics; its scan uses the partial index."""

from __future__ import annotations

import asyncio
import re
import time

import asyncpg
import httpx

from service.queries import Q

EXPIRED, LIVE, FOREVER = 40, 5, 5

POPULATE = """
INSERT INTO sessions (session_id, session_type, expires_at)
SELECT 'x' || g, 'AGENT', now() - interval '1 second' FROM generate_series(1, $1) g
UNION ALL SELECT 'l' || g, 'AGENT', now() + interval '1 hour' FROM generate_series(1, $2) g
UNION ALL SELECT 'n' || g, 'AGENT', NULL FROM generate_series(1, $3) g;
INSERT INTO agents (session_id, agent_id, state, conversation_manager_state)
SELECT s.session_id, 'a' || g, '{}', '{}' FROM sessions s, generate_series(1, 2) g;
INSERT INTO messages (session_id, agent_id, message_id, role, content_types, message)
SELECT a.session_id, a.agent_id, g, 'user', '{text}', '{"role":"user","content":[]}'
  FROM agents a, generate_series(0, 2) g;
INSERT INTO multi_agents (session_id, multi_agent_id, state)
SELECT session_id, 'graph', '{}' FROM sessions;
"""


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM sessions) AS sessions, (SELECT count(*) FROM agents)"
        " AS agents, (SELECT count(*) FROM messages) AS messages,"
        " (SELECT count(*) FROM multi_agents) AS multi_agents"
    )
    return dict(row)


async def _metric(url: str, name: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(url + "/metrics")).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} is not in /metrics"
    return float(match.group(1))


async def test_two_replicas_sweep_exactly_the_expired_sessions_under_the_lock(
    service_process, database_url
):
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            POPULATE.replace("$1", str(EXPIRED))
            .replace("$2", str(LIVE))
            .replace("$3", str(FOREVER))
        )
        total = EXPIRED + LIVE + FOREVER
        assert await conn.fetchval(Q["sweep_lock"])  # the test holds it: nobody may sweep
        env = {
            "DATABASE_URL": database_url,
            "SWEEP_INTERVAL_SECONDS": "0.2",
            "SWEEP_BATCH_SIZE": "7",
        }
        replicas = [service_process(env, wait=False) for _ in range(2)]
        for replica in replicas:
            replica.wait_ready()
        # Expired is gone at once for every replica, before any sweep.
        async with httpx.AsyncClient() as http:
            for replica in replicas:
                url = f"{replica.url}/api/v1/sessions"
                assert (await http.get(f"{url}/x1/agents/a1")).status_code == 404
                assert (await http.get(f"{url}/l1/agents/a1")).status_code == 200
        await asyncio.sleep(1.0)  # about five rounds each, all skipped
        assert (await _counts(conn))["sessions"] == total

        await conn.execute("SELECT pg_advisory_unlock_all()")
        deadline = time.monotonic() + 15
        while await conn.fetchval("SELECT count(*) FROM sessions WHERE expires_at <= now()"):
            assert time.monotonic() < deadline, "the expired sessions were not swept"
            await asyncio.sleep(0.05)
        left = {r[0] for r in await conn.fetch("SELECT session_id FROM sessions")}
        assert left == {f"l{i}" for i in range(1, LIVE + 1)} | {
            f"n{i}" for i in range(1, FOREVER + 1)
        }
        kept = LIVE + FOREVER
        assert await _counts(conn) == {
            "sessions": kept,
            "agents": 2 * kept,
            "messages": 6 * kept,
            "multi_agents": kept,
        }
        swept = [await _metric(r.url, "sessions_expired_total") for r in replicas]
        assert sum(swept) == EXPIRED, swept  # every session deleted once, by one replica
        logged = [
            sum(int(n) for n in re.findall(r"swept (\d+) expired session", r.output()))
            for r in replicas
        ]
        assert logged == swept
    finally:
        await conn.close()


async def test_the_sweep_scan_uses_the_partial_index(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO sessions (session_id, session_type, expires_at)"
            " SELECT 's' || g, 'AGENT', CASE WHEN g % 100 = 0 THEN now() END"
            " FROM generate_series(1, 20000) g"
        )
        await conn.execute("ANALYZE sessions")
        plan = "\n".join(
            r[0] for r in await conn.fetch("EXPLAIN " + Q["sweep_expired_sessions"], 100)
        )
        assert "sessions_expires_at_idx" in plan, plan
        assert "Seq Scan" not in plan, plan
    finally:
        await conn.close()
