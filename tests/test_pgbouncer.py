"""The service through a real PgBouncer in transaction mode (Debian's 1.18).

The HTTP contract tests and the replica tests (cache coherence across two `python -m service`
processes in strict and bounded mode, listener loss, SIGTERM) run again in a child pytest with
TEST_PGBOUNCER_PORT set: the app's pool then goes through PgBouncer with DB_POOLER=transaction,
and LISTEN and the sweeper's advisory lock go to DATABASE_DIRECT_URL. The tests here prove what
the pooler would otherwise break: a statement timeout that still cancels on the server, and a
session-level lock that does not outlive its connection.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from service.settings import Pooler
from service.sweeper import Sweeper
from tests.conftest import app_client, make_settings
from tests.pgbouncer import PgBouncer
from tests.support import ROOT

S = "/api/v1/sessions"
AGENT = {"agent_id": "a", "state": {"n": 0}, "conversation_manager_state": {}}
THROUGH_THE_POOLER = [
    "tests/test_sessions.py",
    "tests/test_agents.py",
    "tests/test_messages.py",
    "tests/test_multi_agents.py",
    "tests/test_errors.py",
    "tests/test_resilience.py",
    # Its premise is a cached plan gone stale; with no statement cache there is none to retry.
    "--deselect=tests/test_resilience.py::test_a_plan_invalidated_by_a_migration_is_retried",
    # Its premise is settling a lost write by ending its server process, which the service does
    # not do behind a transaction pooler (DB_POOLER=transaction turns DB_SETTLE_LOST_WRITES off).
    "--deselect=tests/test_resilience.py::"
    "test_a_retry_whose_connection_dies_before_it_looks_back_tries_again",
]


@pytest.fixture(scope="module")
def pgbouncer(admin_dsn: str) -> Iterator[PgBouncer]:
    with PgBouncer(admin_dsn) as bouncer:
        yield bouncer


def test_contract_and_replica_tests_pass_through_pgbouncer(pgbouncer: PgBouncer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *THROUGH_THE_POOLER],
        cwd=ROOT,
        env={**os.environ, "TEST_PGBOUNCER_PORT": str(pgbouncer.port)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    print(f"\nthrough pgbouncer: {summary}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary


async def test_a_stalled_statement_is_cancelled_on_the_server(
    pgbouncer: PgBouncer, database_url: str
) -> None:
    """PgBouncer refuses `statement_timeout` as a startup parameter, so behind it the timeout
    is asyncpg's, whose cancel request PgBouncer forwards: the blocked UPDATE must not linger."""
    settings = make_settings(
        db_pooler="transaction", database_direct_url=database_url, db_statement_timeout_seconds=0.5
    )
    from service.app import create_app

    app = create_app(settings, dsn=pgbouncer.dsn(database_url))
    async with app_client(app) as http:
        assert (await http.post(S, json={"session_id": "s"})).status_code == 201
        assert (await http.post(f"{S}/s/agents", json=AGENT)).status_code == 201
        with psycopg.connect(database_url) as blocker:
            blocker.execute("SELECT 1 FROM agents WHERE agent_id = 'a' FOR UPDATE")
            started = time.monotonic()
            r = await http.put(f"{S}/s/agents/a", json={**AGENT, "state": {"n": 1}})
            assert r.status_code == 503 and r.headers["retry-after"], r.text
            assert time.monotonic() - started < 8
            waiting = blocker.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            ).fetchone()
            assert waiting == (0,), "the timed-out statement still runs on the server"
        r = await http.put(f"{S}/s/agents/a", json={**AGENT, "state": {"n": 2}})
        assert r.status_code == 200 and r.json()["state"] == {"n": 2}


async def test_the_sweeper_lock_goes_with_its_direct_connection(
    pgbouncer: PgBouncer, database_url: str
) -> None:
    """Through transaction pooling a session-level lock would stay on a server connection other
    clients then get; on the direct connection it ends with the round."""
    settings = make_settings(db_pooler="transaction", database_direct_url=database_url)
    sweeper = Sweeper(pgbouncer.dsn(database_url), settings)
    assert sweeper.dsn == database_url
    for _ in range(2):
        assert await sweeper.round() == 0  # swept (0 expired), not skipped for a held lock
    with psycopg.connect(database_url) as conn:
        held = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = current_database()"
        ).fetchone()
    assert held == (0,)


def test_pooler_settings_need_a_direct_url_and_default_to_no_statement_cache() -> None:
    with pytest.raises(ValueError, match="DATABASE_DIRECT_URL: required when DB_POOLER"):
        make_settings(db_pooler="transaction")
    pooled = make_settings(db_pooler="transaction", database_direct_url="postgresql://h/db")
    assert pooled.db_pooler is Pooler.transaction and pooled.db_statement_cache_size == 0
    assert pooled.db_settle_lost_writes is False  # its backend pids are PgBouncer's
    assert pooled.direct_dsn("postgresql://pooler/db") == "postgresql://h/db"
    kept = make_settings(
        db_pooler="transaction", database_direct_url="postgresql://h/db", db_statement_cache_size=50
    )
    assert kept.db_statement_cache_size == 50  # PgBouncer >= 1.21 with max_prepared_statements
    assert make_settings().direct_dsn("postgresql://x/db") == "postgresql://x/db"
    with pytest.raises(ValueError, match="postgresql://"):
        make_settings(database_direct_url="mysql://h/db")
