"""Benchmark harness of the session service (issue 7): `python -m bench` / `make bench`.

One run creates a fresh database, starts the service as real `python -m service` processes (one
per configuration), drives load from a separate load-generator process (`bench.loadgen`), measures
same-run floors (a bare FastAPI / Starlette app under the same uvicorn settings, raw asyncpg on
one connection), and writes `bench/results.json` (every figure, plus the target ratios) and
`bench/latency.png`.

Modules:
    run        the orchestrator (`main`): the phases of a run and the scenario list
    data       the session, agents, histories and message body, created through the API
    measure    one measured load and the CPU time sampled around it
    loadgen    the closed-loop HTTP/1.1 load generator (its own process)
    seed       the project's first implementation, served from `git archive`, same load
    servers    databases and service / floor processes
    floor_app  the bare FastAPI and Starlette apps of the framework floor
    dbfloor    raw asyncpg figures (the database floor)
    clientbench  the Strands client (`HTTPSessionRepository`) figures
    report     ratios against targets, the table, the JSON file
    plot       bench/latency.png
    profile    `python -m bench.profile`: py-spy profiles of the service under load
    instructions  `python -m bench.instructions`: callgrind's instruction count of an append,
               service against the append floor (repeatable where timings are not)

`BENCH_QUICK=1` runs every step in seconds (the smoke test); figures from it mean nothing.
"""

from __future__ import annotations

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
