"""One measured load: a `bench.loadgen` process, and the CPU time around its window.

`Loads.load` runs the generator, samples the CPU time of the server's process tree, of the
database's PostgreSQL processes and of the whole machine when the measured window opens and
closes, and measures again a scenario that saw more than CONTENDED cores of other work.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from bench import ROOT, servers
from bench.servers import ServerProcess

if TYPE_CHECKING:
    from bench.run import Config

CONTENDED = 0.3  # cores of other work during a measurement above which it is measured again
RETRIES = 1


def progress(message: str, started: float = time.perf_counter()) -> None:
    print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)


class Loads:
    """Measured loads; stores each under `results["scenarios"]`."""

    config: Config
    results: dict[str, Any]
    database: str | None  # whose PostgreSQL backends' CPU time is sampled
    deadline: float  # past this no scenario is measured again

    # --- load --------------------------------------------------------------------------------

    def load(
        self,
        server: ServerProcess,
        name: str | None,
        *,
        paths: list[str],
        concurrency: int,
        method: str = "GET",
        body: dict[str, Any] | None = None,
        requests: int | None = None,
        engine: str = "raw",
    ) -> dict[str, Any]:
        """Run one load in a `bench.loadgen` process; stored under `name` unless None.

        A timed scenario measured while other work took more than CONTENDED cores of the
        machine is run again (up to RETRIES more times, while the run is within its time
        budget), and the attempt with the least foreign load is kept."""
        best: dict[str, Any] | None = None
        retries = 0 if requests is not None or self.config.quick else RETRIES
        attempts = 0
        while attempts <= retries and (not attempts or time.perf_counter() < self.deadline):
            if body is not None and attempts:  # never repeat a message id
                body = {**body, "start": body.get("start", 0) + 100_000_000}
            result = self._load_once(
                server,
                paths=paths,
                concurrency=concurrency,
                method=method,
                body=body,
                requests=requests,
                engine=engine,
            )
            attempts += 1
            if best is None or result["other_cpu"] < best["other_cpu"]:
                best = result
            if result["other_cpu"] <= CONTENDED:
                break
            if attempts <= retries and time.perf_counter() < self.deadline:
                if name is not None:
                    progress(
                        f"{name}: {result['other_cpu']:.2f} cores of other work on the "
                        f"machine during the measurement; measuring again"
                    )
                time.sleep(1.0)
        assert best is not None
        best["attempts"] = attempts
        best["contended"] = best["other_cpu"] > CONTENDED
        if name is not None:
            self.results["scenarios"][name] = best
            errors = f", {best['errors']} errors ({best['error_sample']})" if best["errors"] else ""
            progress(
                f"{name}: {best['rps']:,.0f} req/s, p50 {best['p50_ms']:.2f} ms, "
                f"p99 {best['p99_ms']:.2f} ms, server cpu {best['server_cpu']:.2f}, "
                f"generator cpu {best['gen_cpu']:.2f}, other {best['other_cpu']:.2f}"
                f"{errors}"
            )
        return best

    def _load_once(
        self,
        server: ServerProcess,
        *,
        paths: list[str],
        concurrency: int,
        method: str,
        body: dict[str, Any] | None,
        requests: int | None,
        engine: str,
    ) -> dict[str, Any]:
        spec = {
            "host": "127.0.0.1",
            "port": server.port,
            "concurrency": concurrency,
            "method": method,
            "paths": paths,
            "engine": engine,
            "body": body,
            "warmup": self.config.warmup,
            "requests": requests,
            # With a request count the duration is only a time limit.
            "duration": self.config.duration if requests is None else 600.0,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen"],
            cwd=ROOT,
            text=True,
            env=servers.clean_environment({}),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(json.dumps(spec))
        proc.stdin.close()
        marks = []
        for expected in ("warm", "done"):
            line = proc.stdout.readline().strip()
            if line != expected:
                proc.wait()
                raise RuntimeError(
                    f"load generator: expected {expected!r}, got {line!r}:\n{proc.stderr.read()}"
                )
            marks.append(
                (
                    time.perf_counter(),
                    server.cpu_seconds(),
                    servers.postgres_cpu_seconds(self.database),
                    servers.machine_busy_seconds(),
                )
            )
        result = json.loads(proc.stdout.readline())
        proc.wait()
        (t0, cpu0, pg0, busy0), (t1, cpu1, pg1, busy1) = marks
        count, wall = result["requests"] or 1, t1 - t0
        result["server_cpu"] = round((cpu1 - cpu0) / wall, 3)
        result["server_cpu_us_per_req"] = round((cpu1 - cpu0) / count * 1e6, 1)
        result["db_cpu"] = None if pg0 is None or pg1 is None else round((pg1 - pg0) / wall, 3)
        result["db_cpu_us_per_req"] = (
            None if pg0 is None or pg1 is None else round((pg1 - pg0) / count * 1e6, 1)
        )
        # Cores busy machine-wide, and what is left once server, generator and PostgreSQL are
        # accounted for: other work on the machine (tests, builds) that skews this figure.
        result["machine_cpu"] = round((busy1 - busy0) / wall, 3)
        result["other_cpu"] = round(
            max(
                0.0,
                result["machine_cpu"]
                - result["server_cpu"]
                - result["gen_cpu"]
                - (result["db_cpu"] or 0.0),
            ),
            3,
        )
        result["server"] = server.name
        return result
