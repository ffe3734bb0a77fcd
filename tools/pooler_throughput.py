"""Throughput of message appends through PgBouncer (transaction mode) against a direct
connection, in one run on one machine: the figure behind docs/deploy.md's pooler advice.

    .venv/bin/python tools/pooler_throughput.py [--rounds 3] [--seconds 5] [--concurrency 16]

Three configurations of `python -m service` on one fresh migrated database, measured in
interleaved rounds (so drift of a shared machine hits all alike) with the bench's closed-loop
load generator (`bench.loadgen`, one agent per connection, POST of one message each):
    direct, cache 100   DATABASE_URL straight to PostgreSQL, asyncpg's statement cache on
    direct, cache 0     the same without prepared-statement reuse (what PgBouncer 1.18 needs)
    pgbouncer           DB_POOLER=transaction through a local PgBouncer 1.18, cache 0,
                        LISTEN and the sweeper on DATABASE_DIRECT_URL
Prints the median requests/s and p50 / p99 latency of each and the ratios to the first.
PostgreSQL: BENCH_DATABASE_URL / TEST_DATABASE_URL, else the local one (see bench.servers).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import BenchDatabase, admin_dsn, service
from service import migrate
from tests.pgbouncer import PgBouncer

MESSAGE = '{"message_id": __ID__, "message": {"role": "user", "content": [{"text": "hello"}]}}'


def load(url: str, paths: list[str], seconds: float, concurrency: int, start: int) -> dict:
    spec = {
        "host": "127.0.0.1",
        "port": int(url.rsplit(":", 1)[1]),
        "concurrency": concurrency,
        "method": "POST",
        "paths": paths,
        "duration": seconds,
        "warmup": 1.0,
        "body": {"template": MESSAGE, "batch": None, "start": start},
        "expect": [201],
    }
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def seed(url: str, sid: str, agents: int) -> list[str]:
    """A session `sid` with `agents` agents; the message paths, one per connection."""
    with httpx.Client(base_url=url) as http:
        http.post("/api/v1/sessions", json={"session_id": sid}).raise_for_status()
        paths = []
        for i in range(agents):
            agent = {"agent_id": f"a{i}", "state": {}, "conversation_manager_state": {}}
            http.post(f"/api/v1/sessions/{sid}/agents", json=agent).raise_for_status()
            paths.append(f"/api/v1/sessions/{sid}/agents/a{i}/messages")
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with (
        admin_dsn() as (admin, _where),
        BenchDatabase(admin) as db,
        PgBouncer(admin) as bouncer,
        tempfile.TemporaryDirectory(prefix="pooler-") as scratch,
    ):
        migrate.apply(db.dsn)
        common = {"migrate_on_start": "false", "log_level": "WARNING", "db_pool_max_size": "10"}
        configs = {
            "direct, cache 100": (db.dsn, {"db_statement_cache_size": "100"}),
            "direct, cache 0": (db.dsn, {"db_statement_cache_size": "0"}),
            "pgbouncer": (
                bouncer.dsn(db.dsn),
                {"db_pooler": "transaction", "database_direct_url": db.dsn},
            ),
        }
        results: dict[str, list[dict]] = {name: [] for name in configs}
        servers = {
            name: service(f"pooler-{n}", dsn, Path(scratch), **common, **extra)
            for n, (name, (dsn, extra)) in enumerate(configs.items())
        }
        paths: dict[str, list[str]] = {}
        try:
            for n, (name, server) in enumerate(servers.items()):
                paths[name] = seed(server.url, f"pooler-{n}", args.concurrency)
            for r in range(args.rounds):
                for name, server in servers.items():
                    figures = load(
                        server.url, paths[name], args.seconds, args.concurrency, r * 1_000_000
                    )
                    assert figures["errors"] == 0, (name, figures)
                    results[name].append(figures)
                    print(f"round {r + 1} {name:18} {figures['rps']:8.0f} req/s", file=sys.stderr)
        finally:
            for server in servers.values():
                server.stop()
    base = statistics.median(f["rps"] for f in results["direct, cache 100"])
    print(f"appends, {args.concurrency} connections, {args.rounds} x {args.seconds:.0f} s rounds:")
    for name, runs in results.items():
        rps = statistics.median(f["rps"] for f in runs)
        p50 = statistics.median(f["p50_ms"] for f in runs)
        p99 = statistics.median(f["p99_ms"] for f in runs)
        ratio = rps / base
        print(f"  {name:18} {rps:7.0f} req/s ({ratio:4.2f}x)  p50 {p50:5.1f} ms  p99 {p99:6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
