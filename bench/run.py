"""The orchestrator of `python -m bench`: data, scenarios, floors, results.

The run, in order (one service process at a time, so that no idle replica spends CPU on the
cache-invalidation notices of another's writes while it is measured):

1. a fresh database `bench_<hex>`; the first service start migrates it;
2. the default service (CACHE_MODE=strict): test data over HTTP (agents, histories of 100,
   1,000 and 10,000 messages of 1 KB, one agent per connection for the append scenarios);
   the bodies of a real GET-agent and append answer become the framework floor's bodies;
3. the framework floor (bare FastAPI, same uvicorn settings) once at the start, to bracket
   the run with a sample next to the bounded-mode GETs and one at the end;
4. against the default service: append (1 KB) at 1 / 16 / 64 connections, each of 1 and 16
   followed by the append floor (bare FastAPI + asyncpg pool + the same INSERT) at the same
   concurrency; batch append (50) at 1 / 16 / 64 connections, GET agent warm (small and 50 KB
   state), GET session, first page of a 100-message history and the last page of a
   10,000-message one; then the Strands client;
5. the database floor (raw asyncpg, one connection, no service running);
6. CACHE_TTL_SECONDS=0 (cold GETs), CACHE_MODE=bounded with WORKERS=1 and WORKERS=2;
7. the memory check on a fresh process (CACHE_MODE=bounded): RSS after 10,000 and after
   100,000 warm GETs of an agent;
8. the floors: FastAPI GET / POST at 1 / 16 / 64 connections, the httpx-engine calibration,
   bare Starlette, FastAPI with WORKERS=2;
9. the peer comparison (`bench.peers`): the same scripted agent on other Strands session
   backends and on this project, time per turn spent on persistence;
10. drop the database; ratios, table, results.json, latency.png.

With BENCH_QUICK=1 every server is started right after step 2 instead, to save their start-up
times (the figures of a quick run mean nothing anyway).

Every load scenario runs in a separate `bench.loadgen` process; the orchestrator samples the
CPU time of the server, of the database's PostgreSQL processes and of the whole machine when
the measured window opens and closes. What the machine spent beyond those three and the
generator is other work (someone's test suite): a scenario that saw more than CONTENDED cores
of it is measured again, up to RETRIES times while the run is within BENCH_RETRY_BUDGET_S, and
keeps its least disturbed attempt; one still disturbed is marked `contended` (and `*`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from bench import BENCH_DIR, ROOT, clientbench, data, dbfloor, peers, report, seed, servers
from bench.data import (
    API,
    APPEND_FLOOR_CONCURRENCY,
    BATCH,
    BODY_TEMPLATE,
    CONCURRENCY,
    MESSAGE_DOCUMENT,
    SESSION,
    TEXT,
    agent_path,
)
from bench.measure import Loads, progress
from bench.servers import ServerProcess

# The servers of a run: (kind, settings); kind is "service" or a floor app.
SERVERS: dict[str, tuple[str, dict[str, str]]] = {
    "strict": ("service", {}),
    "nocache": ("service", {"CACHE_TTL_SECONDS": "0"}),
    "bounded": ("service", {"CACHE_MODE": "bounded"}),
    "bounded-w2": ("service", {"CACHE_MODE": "bounded", "WORKERS": "2"}),
    # A fresh process for the RSS after 10,000 and 100,000 requests: warm GETs of an agent in
    # bounded mode (no database round trip), which make 100,000 requests take about a minute
    # and a half rather than the three to four minutes of strict mode on 2 cores.
    "memory": ("service", {"CACHE_MODE": "bounded"}),
    "floor-fastapi": ("fastapi", {}),
    "floor-starlette": ("starlette", {}),
    "floor-fastapi-w2": ("fastapi", {"WORKERS": "2"}),
    # The append floor: bare FastAPI + asyncpg pool + the service's INSERT ... RETURNING.
    "floor-append": ("append", {}),
}
# Every scenario a run measures (results.json "scenarios"); the smoke test checks them all.
SCENARIOS = (
    *(f"append_c{c}" for c in CONCURRENCY),
    *(f"floor_append_c{c}" for c in APPEND_FLOOR_CONCURRENCY),
    *(f"batch50_c{c}" for c in CONCURRENCY),
    "get_agent_strict_warm_c16",
    "get_agent_strict_warm_50kb_c16",
    "get_session_c16",
    "list_first_page_100_c1",
    "list_last_page_10000_c1",
    "get_agent_cold_c16",
    "get_agent_cold_50kb_c16",
    "get_agent_bounded_warm_c16",
    "get_agent_bounded_warm_c64",
    "get_agent_bounded_warm_w2_c64",
    *(f"floor_fastapi_get_c{c}" for c in CONCURRENCY),
    "floor_fastapi_get_c16_mid",
    "floor_fastapi_get_c16_end",
    *(f"floor_fastapi_post_c{c}" for c in CONCURRENCY),
    "floor_starlette_get_c16",
    "floor_starlette_post_c16",
    "floor_fastapi_get_w2_c64",
    "calibration_httpx_floor_fastapi_get_c16",
    *seed.SCENARIOS,
)
CLIENT_KEYS = (
    "create_message_median_ms",
    "create_message_p90_ms",
    "restore_1000_s",
    "restore_10000_s",
    "floor_round_trip_median_ms",
)
DB_FLOOR_KEYS = (
    "read_agent_median_ms",
    "create_message_median_ms",
    "create_message_txn_median_ms",
    "fetch_1000_s",
    "fetch_10000_s",
)
MEMORY_KEYS = ("rss_at_start", "rss_after_10000", "rss_after_100000", "ratio", "rps")


@dataclass
class Config:
    quick: bool
    duration: float
    warmup: float
    output_dir: Path
    memory_requests: tuple[int, int] = (10_000, 100_000)
    client_samples: int = 200
    client_restores: int = 5
    db_samples: int = 500
    retry_budget: float = float(os.environ.get("BENCH_RETRY_BUDGET_S", "240"))

    @classmethod
    def from_args(cls, argv: list[str] | None) -> Config:
        parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
        parser.add_argument(
            "--quick",
            action="store_true",
            default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
            help="seconds, not minutes: checks the harness (BENCH_QUICK=1)",
        )
        parser.add_argument(
            "--duration",
            type=float,
            default=None,
            help="measured seconds per scenario (default 5; quick 0.3)",
        )
        parser.add_argument(
            "--warmup",
            type=float,
            default=None,
            help="unmeasured seconds before each (default 1; quick 0.1)",
        )
        parser.add_argument(
            "--output-dir",
            type=Path,
            default=Path(os.environ.get("BENCH_OUTPUT_DIR") or BENCH_DIR),
            help="where results.json and latency.png go (BENCH_OUTPUT_DIR)",
        )
        args = parser.parse_args(argv)
        if args.quick:
            return cls(
                True,
                args.duration or 0.3,
                args.warmup or 0.1,
                args.output_dir,
                memory_requests=(300, 1000),
                client_samples=10,
                client_restores=1,
                db_samples=20,
            )
        return cls(False, args.duration or 5.0, args.warmup or 1.0, args.output_dir)


class Bench(Loads):
    """One run: holds the configuration, the scratch folder and the results so far."""

    def __init__(self, config: Config, scratch: Path) -> None:
        self.config = config
        self.scratch = scratch
        self.results: dict[str, Any] = {
            "meta": {},
            "scenarios": {},
            "client": {},
            "db_floor": {},
            "memory": {},
            "derived": {},
            "peers": {},
            "seed": {},
        }
        self.last_page_query = ""
        self.database: str | None = None  # its backends' CPU time is sampled
        self.agent_body = scratch / "agent-body.json"
        self.message_body = scratch / "message-body.json"
        self._stack = contextlib.ExitStack()  # stops every server at the end
        self._servers: dict[str, ServerProcess] = {}
        self._dsn: str | None = None
        # Past this point no scenario is measured again for contention (the 10-minute budget).
        self.deadline = time.perf_counter() + config.retry_budget

    # --- phases ------------------------------------------------------------------------------

    def default_service(self, server: ServerProcess, floor: ServerProcess) -> None:
        # The append floor right after the service's own appends at the same concurrency: the
        # closer in time, the less other work on the machine can favour either. (The idle
        # service costs nothing meanwhile: with no bounded replica, appends send no notices.)
        append_floor = self.server("floor-append")
        for c in CONCURRENCY:
            self.load(
                server,
                f"append_c{c}",
                method="POST",
                concurrency=c,
                paths=[agent_path(f"append-c{c}-{i}", "messages") for i in range(c)],
                body={"template": BODY_TEMPLATE, "batch": None, "start": 0},
            )
            if c in APPEND_FLOOR_CONCURRENCY:
                self.load(
                    append_floor,
                    f"floor_append_c{c}",
                    method="POST",
                    concurrency=c,
                    paths=[agent_path(f"floor-append-c{c}-{i}", "messages") for i in range(c)],
                    body={"template": BODY_TEMPLATE, "batch": None, "start": 0},
                )
        append_floor.stop()
        for c in CONCURRENCY:
            self.load(
                server,
                f"batch50_c{c}",
                method="POST",
                concurrency=c,
                paths=[agent_path(f"batch-c{c}-{i}", "messages", "batch") for i in range(c)],
                body={"template": BODY_TEMPLATE, "batch": BATCH, "start": 0},
            )
            self.results["scenarios"][f"batch50_c{c}"]["messages_per_s"] = round(
                self.results["scenarios"][f"batch50_c{c}"]["rps"] * BATCH, 1
            )
        self.load(server, "get_agent_strict_warm_c16", paths=[agent_path("small")], concurrency=16)
        self.load(
            server, "get_agent_strict_warm_50kb_c16", paths=[agent_path("big")], concurrency=16
        )
        self.load(server, "get_session_c16", paths=[API], concurrency=16)
        self.load(
            server,
            "list_first_page_100_c1",
            concurrency=1,
            paths=[agent_path("hist100", "messages") + "?limit=100"],
        )
        self.load(
            server,
            "list_last_page_10000_c1",
            concurrency=1,
            paths=[agent_path("hist10000", "messages") + "?" + self.last_page_query],
        )

        config = self.config
        progress("the Strands client")
        client = clientbench.measure(
            server.url,
            SESSION,
            "client",
            TEXT,
            {"hist1000": 1000, "hist10000": 10000},
            config.client_samples,
            config.client_restores,
        )
        client["floor_round_trip_median_ms"] = clientbench.floor_round_trip(
            floor.url, BODY_TEMPLATE.replace("__ID__", "1").encode(), config.client_samples
        )
        self.results["client"] = client
        progress(f"client: {json.dumps(client)}")

    def database_floor(self, dsn: str) -> None:
        progress("the database floor (raw asyncpg, one connection)")
        self.results["db_floor"] = dbfloor.measure(
            dsn,
            SESSION,
            "small",
            "dbfloor",
            MESSAGE_DOCUMENT,
            {"hist1000": 1000, "hist10000": 10000},
            samples=self.config.db_samples,
            fetch_repeats=self.config.client_restores,
        )
        progress(f"db floor: {json.dumps(self.results['db_floor'])}")

    def memory(self, server: ServerProcess) -> None:
        first, total = self.config.memory_requests
        memory: dict[str, Any] = {
            "rss_at_start": server.rss(),
            "requests": [first, total],
            "concurrency": 64,
            "route": "GET agent (CACHE_MODE=bounded, warm cache)",
        }
        a = self.load(server, None, paths=[agent_path("small")], concurrency=64, requests=first)
        memory["rss_after_10000"] = server.rss()
        b = self.load(
            server, None, paths=[agent_path("small")], concurrency=64, requests=total - first
        )
        memory["rss_after_100000"] = server.rss()
        memory["ratio"] = round(memory["rss_after_100000"] / memory["rss_after_10000"], 3)
        memory["rps"] = round((a["requests"] + b["requests"]) / (a["seconds"] + b["seconds"]), 1)
        memory["seconds"] = round(a["seconds"] + b["seconds"], 1)
        memory["errors"] = a["errors"] + b["errors"]
        self.results["memory"].update(memory)
        progress(f"memory: {json.dumps(memory)}")

    def floors(self, fastapi: ServerProcess) -> None:
        agent = ["/api/v1/sessions/floor/agents/floor"]
        messages = [agent[0] + "/messages"]
        body = {"template": BODY_TEMPLATE, "batch": None, "start": 0}
        for c in (1, 64):
            self.load(fastapi, f"floor_fastapi_get_c{c}", paths=agent, concurrency=c)
        for c in CONCURRENCY:
            self.load(
                fastapi,
                f"floor_fastapi_post_c{c}",
                method="POST",
                concurrency=c,
                paths=messages * c,
                body=body,
            )
        self.load(fastapi, "floor_fastapi_get_c16_end", paths=agent, concurrency=16)
        self.load(
            fastapi,
            "calibration_httpx_floor_fastapi_get_c16",
            paths=agent,
            concurrency=16,
            engine="httpx",
        )
        fastapi.stop()
        starlette = self.server("floor-starlette")
        self.load(starlette, "floor_starlette_get_c16", paths=agent, concurrency=16)
        self.load(
            starlette,
            "floor_starlette_post_c16",
            method="POST",
            concurrency=16,
            paths=messages * 16,
            body=body,
        )
        starlette.stop()
        fastapi2 = self.server("floor-fastapi-w2")
        self.load(fastapi2, "floor_fastapi_get_w2_c64", paths=agent, concurrency=64)
        fastapi2.stop()

        scenarios = self.results["scenarios"]
        samples = [
            scenarios["floor_fastapi_get_c16"],
            scenarios["floor_fastapi_get_c16_mid"],
            scenarios["floor_fastapi_get_c16_end"],
        ]
        self.results["derived"]["framework_floor_c16"] = {
            "rps": round(statistics.mean(s["rps"] for s in samples), 1),
            "p50_ms": round(statistics.mean(s["p50_ms"] for s in samples), 4),
            "samples_rps": [s["rps"] for s in samples],
            "note": "bare FastAPI GET of the same body, 16 connections: mean of a sample at "
            "the start, one right after the bounded-mode GETs and one at the end of the run",
        }

    # --- servers -----------------------------------------------------------------------------

    def launch(self, name: str) -> ServerProcess:
        """Start server `name` (see SERVERS) without waiting for it, once."""
        if name not in self._servers:
            kind, settings = SERVERS[name]
            if kind == "service":
                assert self._dsn is not None
                server = servers.service(name, self._dsn, self.scratch, wait=False, **settings)
            elif kind == "append":
                assert self._dsn is not None
                server = servers.append_floor(self._dsn, self.scratch, wait=False)
            else:
                server = servers.floor(
                    kind,
                    self.scratch,
                    self.agent_body,
                    self.message_body,
                    int(settings.get("WORKERS", "1")),
                    wait=False,
                )
            self._servers[name] = self._stack.enter_context(server)
        return self._servers[name]

    def server(self, name: str) -> ServerProcess:
        """Server `name`, started now unless it was launched before, once it is ready."""
        return self.launch(name).wait_ready()

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        meta = self.results["meta"]
        meta.update(_meta(self.config))
        with (
            servers.admin_dsn() as (admin, source),
            servers.BenchDatabase(admin) as database,
            self._stack,
        ):
            self.database, self._dsn = database.name, database.dsn
            meta["database"] = {
                "source": source,
                "name": database.name,
                "admin_dsn": servers.redact(admin),
            }
            progress(f"database {database.name} on {source}")
            default = self.server("strict")  # the first start migrates the database
            progress("service up (CACHE_MODE=strict); creating data")
            self.last_page_query = data.create(
                default.url, self.agent_body, self.message_body, self.results["meta"]
            )
            if self.config.quick:
                # Figures do not matter: start every server now, not one after the other.
                for name in SERVERS:
                    self.launch(name)
            fastapi = self.server("floor-fastapi")
            self.load(
                fastapi,
                "floor_fastapi_get_c16",
                paths=["/api/v1/sessions/floor/agents/floor"],
                concurrency=16,
            )
            rss_before = default.rss()
            self.default_service(default, fastapi)
            self.results["memory"]["default_service_rss"] = {
                "after_setup": rss_before,
                "after_its_scenarios": default.rss(),
                "note": "the CACHE_MODE=strict process, before and after its scenarios "
                "(appends, batches, strict GETs, lists, the client)",
            }
            default.stop()
            progress(f"the seed (commit {seed.SEED_COMMIT[:7]}) on a database of its own")
            self.results["seed"] = seed.measure(self, admin)

            self.database_floor(database.dsn)

            nocache = self.server("nocache")
            self.load(nocache, "get_agent_cold_c16", paths=[agent_path("small")], concurrency=16)
            self.load(nocache, "get_agent_cold_50kb_c16", paths=[agent_path("big")], concurrency=16)
            nocache.stop()
            bounded = self.server("bounded")
            for c in (16, 64):
                self.load(
                    bounded,
                    f"get_agent_bounded_warm_c{c}",
                    paths=[agent_path("small")],
                    concurrency=c,
                )
                if c == 16:  # a floor sample next to the cached GETs it is the floor of
                    self.load(
                        fastapi,
                        "floor_fastapi_get_c16_mid",
                        paths=["/api/v1/sessions/floor/agents/floor"],
                        concurrency=16,
                    )
            bounded.stop()
            bounded2 = self.server("bounded-w2")
            self.load(
                bounded2,
                "get_agent_bounded_warm_w2_c64",
                paths=[agent_path("small")],
                concurrency=64,
            )
            bounded2.stop()
            fresh = self.server("memory")
            self.memory(fresh)
            fresh.stop()
            self.floors(fastapi)
            progress("the peer comparison (python -m bench.peers)")
            self.results["peers"] = peers.measure(self.config.quick, admin, self.scratch)
        meta["elapsed_s"] = round(time.perf_counter() - started, 1)
        self.results["ratios"] = report.ratios(self.results)
        expected = set(SCENARIOS) - (
            set() if self.results["seed"]["available"] else {*seed.SCENARIOS}
        )
        missing = expected - set(self.results["scenarios"])
        if missing:  # a scenario added to a phase but not to SCENARIOS, or the reverse
            raise RuntimeError(f"scenarios not measured: {sorted(missing)}")
        return self.results


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def _meta(config: Config) -> dict[str, Any]:
    return {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": config.quick,
        "duration_s": config.duration,
        "warmup_s": config.warmup,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": _git(),
        # uvicorn's "auto" (what `python -m service` and the floor use) picks these when present.
        "uvicorn_loop": "uvloop" if find_spec("uvloop") else "asyncio",
        "uvicorn_http": "httptools" if find_spec("httptools") else "h11",
        "load_generator": "bench.loadgen, raw asyncio streams on uvloop, own process",
        "versions": {
            p: _version(p)
            for p in (
                "fastapi",
                "starlette",
                "uvicorn",
                "uvloop",
                "httptools",
                "asyncpg",
                "orjson",
                "httpx",
                "pydantic",
            )
        },
        "message_body_template_bytes": len(BODY_TEMPLATE.replace("__ID__", "12345")),
    }


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-") as name:
        yield Path(name)


def main(argv: list[str] | None = None) -> int:
    config = Config.from_args(argv)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    with _scratch() as scratch:
        bench = Bench(config, scratch)
        try:
            results = bench.run()
        except Exception:
            for log in sorted(scratch.glob("*.log")):
                print(
                    f"--- {log.name} (end) ---\n{log.read_text(errors='replace')[-3000:]}",
                    file=sys.stderr,
                )
            raise
    path = config.output_dir / "results.json"
    report.write(results, path)
    from bench.plot import plot

    plot(report.clean(results), config.output_dir / "latency.png")
    print(report.table(results))
    if results.get("peers"):
        print("\n" + peers.table(results["peers"]))
    print(
        f"\nwrote {path} and {config.output_dir / 'latency.png'} "
        f"in {results['meta']['elapsed_s']} s"
    )
    return 0
