"""The benchmark harness runs end to end (BENCH_QUICK=1) and writes every figure.

Checks the shape of bench/results.json only: a quick run's timings mean nothing, and tests never
assert on speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")  # the `bench` extra

from bench import peers, report
from bench import run as benchrun

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_FIGURES = (
    "rps",
    "p50_ms",
    "p99_ms",
    "requests",
    "errors",
    "concurrency",
    "server_cpu_us_per_req",
    "gen_cpu",
)


@pytest.mark.timeout(180)
def test_quick_benchmark_writes_every_figure(tmp_path: Path, admin_dsn: str) -> None:
    env = {
        **os.environ,
        "BENCH_QUICK": "1",
        "BENCH_OUTPUT_DIR": str(tmp_path),
        "BENCH_DATABASE_URL": admin_dsn,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["meta"]["quick"] is True
    assert set(results["scenarios"]) == set(benchrun.SCENARIOS)
    for name, figures in results["scenarios"].items():
        for key in SCENARIO_FIGURES:
            assert key in figures, f"{name} lacks {key}"
        assert figures["errors"] == 0, f"{name}: {figures['error_sample']}"
    # Quick windows are a fraction of a second: on a loaded machine a slow scenario (64 batch
    # appends at once) may complete nothing inside one. The cheap ones always do.
    for name in ("floor_fastapi_get_c16", "append_c1", "get_agent_bounded_warm_c16"):
        assert results["scenarios"][name]["requests"] > 0, name
    for section, keys in (
        ("client", benchrun.CLIENT_KEYS),
        ("db_floor", benchrun.DB_FLOOR_KEYS),
        ("memory", benchrun.MEMORY_KEYS),
    ):
        for key in keys:
            assert isinstance(results[section].get(key), int | float), f"{section}.{key}"
    # The peer comparison, quick: FileSessionManager and this project, from the same run.
    for name in (peers.BACKENDS[0][0], peers.THIS):
        backend = results["peers"]["backends"][name]
        assert backend["available"], backend
        assert backend["per_turn_ms"] > 0 and backend["restore_ms"] > 0
        assert backend["messages_per_session"] > 0
    # The seed (the project's first commit) is served from `git archive` in the same run.
    assert results["seed"]["available"], results["seed"]
    assert set(results["ratios"]) == {ratio.key for ratio in report.RATIOS}
    for key, ratio in results["ratios"].items():
        assert isinstance(ratio["measured"], int | float), key
        assert set(ratio) >= {"description", "target", "measured", "met"}
    assert (tmp_path / "latency.png").read_bytes().startswith(b"\x89PNG")
    assert "ratio" in done.stdout  # the table was printed
