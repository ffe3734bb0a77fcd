"""`python -m bench.profile`: where the service's CPU time goes, per scenario, with py-spy.

For each scenario: a fresh `python -m service` (the configuration the scenario needs) on a fresh
database with the benchmark's data, the load generator driving it, and `py-spy record` sampling
the server process for `--duration` seconds once the load is warm. The raw (collapsed) stacks go
to `<output-dir>/<scenario>.raw`; `<scenario>.txt` summarises them:

- on-CPU samples / (duration x rate): how busy the server's thread was;
- self time by function (the leaf frame), and inclusive time by function (counted once per
  stack), as a share of the on-CPU samples;
- inclusive time by component (service, fastapi, starlette, pydantic, asyncpg, aiocache,
  backoff, ...): the first frame of each component in a stack.

py-spy needs ptrace rights on the server process (root, or CAP_SYS_PTRACE in a container):
`pip install py-spy` (it is in the `bench` extra).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import BENCH_DIR, ROOT, data, servers
from bench import run as benchrun

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Target:
    """One profiled scenario: the server settings and the load."""

    settings: dict[str, str]
    method: str
    paths: Any  # list[str], or a callable of the Bench giving it
    concurrency: int
    body: dict[str, Any] | None = None


def _append_paths(c: int) -> list[str]:
    return [data.agent_path(f"append-c{c}-{i}", "messages") for i in range(c)]


TARGETS: dict[str, Target] = {
    "append_c16": Target(
        {},
        "POST",
        _append_paths(16),
        16,
        {"template": data.BODY_TEMPLATE, "batch": None, "start": 0},
    ),
    "get_agent_strict_warm_c16": Target({}, "GET", [data.agent_path("small")], 16),
    "get_agent_cold_c16": Target({"CACHE_TTL_SECONDS": "0"}, "GET", [data.agent_path("small")], 16),
    "get_agent_bounded_warm_c16": Target(
        {"CACHE_MODE": "bounded"}, "GET", [data.agent_path("small")], 16
    ),
    "list_first_page_100_c4": Target(
        {}, "GET", [data.agent_path("hist100", "messages") + "?limit=100"], 4
    ),
    "list_last_page_10000_c4": Target(
        {},
        "GET",
        lambda bench: [data.agent_path("hist10000", "messages") + "?" + bench.last_page_query],
        4,
    ),
}


def _component(path: str) -> str:
    """The package a frame's file belongs to: `fastapi`, `service`, `asyncio`, ..."""
    parts = Path(path).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts[:-1]:
            return parts[parts.index(marker) + 1].removesuffix(".py")
    if str(ROOT) in path:
        return Path(path).relative_to(ROOT).parts[0].removesuffix(".py")
    for i, part in enumerate(parts[:-1]):
        if re.fullmatch(r"python3\.\d+", part):  # the standard library
            return parts[i + 1].removesuffix(".py")
    return Path(path).stem or "?"


def summarise(raw: str, seconds: float, rate: int, top: int = 30) -> str:
    """A text summary of py-spy's collapsed stacks (one `frame;frame;... count` per line)."""
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    components: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            if match is None:
                frames.append((frame, "?"))
                continue
            where = match["file"].split("site-packages/")[-1].removeprefix(f"{ROOT}/")
            frames.append((f"{match['func']} ({where})", _component(match["file"])))
        if not frames:
            continue
        self_time[frames[-1][0]] += count
        for name in {name for name, _ in frames}:
            inclusive[name] += count
        for component in {c for _, c in frames}:
            components[component] += count
    possible = seconds * rate
    lines = [
        f"on-CPU samples: {total} of {possible:.0f} possible "
        f"({100 * total / possible:.0f}% of one core busy in Python frames)",
        "",
    ]

    def block(title: str, counter: collections.Counter[str], limit: int) -> None:
        lines.append(title)
        for name, count in counter.most_common(limit):
            lines.append(f"  {100 * count / max(total, 1):5.1f}%  {name}")
        lines.append("")

    block("inclusive, by component (share of on-CPU samples with a frame of it):", components, 25)
    block(f"self time, top {top} functions:", self_time, top)
    block(f"inclusive time, top {top + 20} functions:", inclusive, top + 20)
    return "\n".join(lines)


def _load_in_background(
    bench: benchrun.Bench,
    server: servers.ServerProcess,
    target: Target,
    paths: list[str],
    figures: dict[str, Any],
) -> threading.Thread:
    def drive() -> None:
        figures.update(
            bench.load(
                server,
                None,
                paths=paths,
                concurrency=target.concurrency,
                method=target.method,
                body=target.body,
            )
        )

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    return thread


def profile(names: list[str], duration: float, rate: int, output: Path) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy (the `bench` extra)")
    output.mkdir(parents=True, exist_ok=True)
    config = benchrun.Config(
        quick=False, duration=duration + 2.0, warmup=1.0, output_dir=output, retry_budget=0.0
    )  # one attempt each
    with (
        tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch_name,
        servers.admin_dsn() as (admin, _source),
        servers.BenchDatabase(admin) as database,
    ):
        scratch = Path(scratch_name)
        bench = benchrun.Bench(config, scratch)
        bench.database = database.name
        with servers.service("setup", database.dsn, scratch) as server:
            bench.last_page_query = data.create(
                server.url, bench.agent_body, bench.message_body, bench.results["meta"]
            )
        for name in names:
            target = TARGETS[name]
            paths = target.paths(bench) if callable(target.paths) else target.paths
            with servers.service(name, database.dsn, scratch, **target.settings) as server:
                figures: dict[str, Any] = {}
                thread = _load_in_background(bench, server, target, paths, figures)
                time.sleep(1.5)  # the generator's warm-up, plus the cache filling
                raw_path = output / f"{name}.raw"
                subprocess.run(
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(server.proc.pid),
                        "--duration",
                        str(int(duration)),
                        "--rate",
                        str(rate),
                        "--format",
                        "raw",
                        "--output",
                        str(raw_path),
                        "--nonblocking",
                    ],
                    check=True,
                    capture_output=True,
                )
                thread.join()
            load = (
                f"load (with py-spy attached): {figures.get('rps', 0):,.0f} req/s at "
                f"{target.concurrency} connections, p50 {figures.get('p50_ms', 0):.2f} ms, "
                f"server CPU {figures.get('server_cpu_us_per_req', 0):,.0f} us/request, "
                f"PostgreSQL CPU {figures.get('db_cpu_us_per_req') or 0:,.0f} us/request, "
                f"other work {figures.get('other_cpu', 0):.2f} cores"
            )
            summary = load + "\n" + summarise(raw_path.read_text(), duration, rate)
            (output / f"{name}.txt").write_text(f"{name}\n\n{summary}\n")
            print(f"=== {name}\n{summary}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "scenarios", nargs="*", default=list(TARGETS), help=f"default: all of {', '.join(TARGETS)}"
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds sampled each")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--output-dir", type=Path, default=BENCH_DIR / "profiles")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(TARGETS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    profile(args.scenarios, args.duration, args.rate, args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
