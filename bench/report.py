"""The targets as ratios of measured figures, the printed table, results.json.

Every ratio names its numerator and denominator as paths into the results (`section.key.field`),
so results.json shows what was divided by what. A ratio whose inputs are missing (e.g. the
client could not be imported) is reported as measured=None, met=False.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Ratio:
    key: str
    description: str
    numerator: tuple[str, ...]
    denominator: tuple[tuple[str, ...], ...]  # summed
    target: float | None  # None: for information, no target
    op: str = ">="


RATIOS = (
    Ratio(
        "get_agent_bounded_vs_framework_floor",
        "GET agent, warm cache, CACHE_MODE=bounded, req/s / framework floor req/s "
        "(FastAPI, 16 connections)",
        ("scenarios", "get_agent_bounded_warm_c16", "rps"),
        (("derived", "framework_floor_c16", "rps"),),
        0.75,
    ),
    Ratio(
        "strict_cache_speedup_50kb",
        "strict mode: warm-cache GET of an agent with 50 KB of state, req/s / the same GET "
        "with CACHE_TTL_SECONDS=0 (16 connections)",
        ("scenarios", "get_agent_strict_warm_50kb_c16", "rps"),
        (("scenarios", "get_agent_cold_50kb_c16", "rps"),),
        1.5,
    ),
    Ratio(
        "append_vs_append_floor",
        "append one message (1 KB), 16 connections, req/s / the append floor's req/s (bare "
        "FastAPI POST running the same INSERT ... RETURNING through an asyncpg pool)",
        ("scenarios", "append_c16", "rps"),
        (("scenarios", "floor_append_c16", "rps"),),
        0.70,
    ),
    Ratio(
        "append_cpu_vs_append_floor",
        "server CPU microseconds per append / the append floor's, 16 connections",
        ("scenarios", "append_c16", "server_cpu_us_per_req"),
        (("scenarios", "floor_append_c16", "server_cpu_us_per_req"),),
        2.0,
        "<=",
    ),
    Ratio(
        "last_page_vs_first_page",
        "p50 of the last page (cursor of page 99, limit 100) of a 10,000-message history / "
        "p50 of the first page of a 100-message history (1 connection)",
        ("scenarios", "list_last_page_10000_c1", "p50_ms"),
        (("scenarios", "list_first_page_100_c1", "p50_ms"),),
        1.5,
        "<=",
    ),
    Ratio(
        "restore_10000_vs_raw_fetch",
        "client list_messages(limit=None) of 10,000 messages (one NDJSON stream) / raw asyncpg "
        "fetch of the rows",
        ("client", "restore_10000_s"),
        (("db_floor", "fetch_10000_s"),),
        3.0,
        "<=",
    ),
    Ratio(
        "restore_1000_vs_raw_fetch",
        "client list_messages(limit=None) of 1,000 messages / raw asyncpg fetch of the rows",
        ("client", "restore_1000_s"),
        (("db_floor", "fetch_1000_s"),),
        3.0,
        "<=",
    ),
    Ratio(
        "append_vs_seed",
        "append one message (1 KB), 16 connections, req/s / the seed's (the project's first "
        "implementation, bench.seed, on a database of its own) at the same load",
        ("scenarios", "append_c16", "rps"),
        (("scenarios", "seed_append_c16", "rps"),),
        8.0,
    ),
    Ratio(
        "client_create_vs_floors",
        "client create_message median / (floor POST round trip median + raw insert median)",
        ("client", "create_message_median_ms"),
        (("client", "floor_round_trip_median_ms"), ("db_floor", "create_message_median_ms")),
        2.0,
        "<=",
    ),
    Ratio(
        "persistence_per_turn_vs_best_peer",
        "time an agent spends on persistence per turn with this project (write-behind when the "
        "client has it, else synchronous) / with the fastest other Strands session backend "
        "(bench.peers: same scripted agent, 60 turns, every third with a tool call)",
        ("peers", "derived", "this_per_turn_ms"),
        (("peers", "derived", "best_peer_per_turn_ms"),),
        1.0,
        "<",
    ),
    Ratio(
        "workers2_vs_workers1",
        "WORKERS=2 / WORKERS=1 cached-read req/s (GET agent, CACHE_MODE=bounded, 64 connections)",
        ("scenarios", "get_agent_bounded_warm_w2_c64", "rps"),
        (("scenarios", "get_agent_bounded_warm_c64", "rps"),),
        1.6,
    ),
    Ratio(
        "memory_100k_vs_10k",
        "service RSS after 100,000 requests / after 10,000 (within 20%)",
        ("memory", "rss_after_100000"),
        (("memory", "rss_after_10000"),),
        1.2,
        "<=",
    ),
    # For information: what the machine and the framework allow.
    Ratio(
        "floor_workers2_vs_workers1",
        "framework floor WORKERS=2 / WORKERS=1 req/s, 64 connections (the machine's ceiling "
        "for workers2_vs_workers1 with the generator on the same 2 cores)",
        ("scenarios", "floor_fastapi_get_w2_c64", "rps"),
        (("scenarios", "floor_fastapi_get_c64", "rps"),),
        None,
    ),
    Ratio(
        "append_vs_framework_floor",
        "append one message (1 KB), 16 connections, req/s / bare FastAPI GET req/s",
        ("scenarios", "append_c16", "rps"),
        (("derived", "framework_floor_c16", "rps"),),
        None,
    ),
    Ratio(
        "append_floor_vs_post_floor",
        "the append floor / bare FastAPI POST reading the same body, 16 connections: what the "
        "database round trip costs by itself",
        ("scenarios", "floor_append_c16", "rps"),
        (("scenarios", "floor_fastapi_post_c16", "rps"),),
        None,
    ),
    Ratio(
        "append_vs_post_floor",
        "append one message, 16 connections / bare FastAPI POST reading the same body",
        ("scenarios", "append_c16", "rps"),
        (("scenarios", "floor_fastapi_post_c16", "rps"),),
        None,
    ),
    Ratio(
        "fastapi_vs_starlette_floor",
        "bare FastAPI / bare Starlette GET req/s, 16 connections",
        ("derived", "framework_floor_c16", "rps"),
        (("scenarios", "floor_starlette_get_c16", "rps"),),
        None,
    ),
    Ratio(
        "stream_10000_vs_raw_fetch",
        "the stream of a 10,000-message restore over plain httpx, read whole and parsed as one "
        "array (no Strands objects) / raw asyncpg fetch: the server and the transfer",
        ("client", "stream_10000_s"),
        (("db_floor", "fetch_10000_s"),),
        None,
    ),
    Ratio(
        "pages_10000_orjson_vs_raw_fetch",
        "the 10 pages of 1,000 of a 10,000-message history over plain httpx, parsed with orjson "
        "(no Strands objects) / raw asyncpg fetch: a restore's path with a limit",
        ("client", "pages_10000_orjson_s"),
        (("db_floor", "fetch_10000_s"),),
        None,
    ),
    Ratio(
        "pages_10000_json_vs_raw_fetch",
        "the same pages parsed with the standard library's json / raw asyncpg fetch",
        ("client", "pages_10000_json_s"),
        (("db_floor", "fetch_10000_s"),),
        None,
    ),
    Ratio(
        "restore_1000_vs_best_peer",
        "restore of 1,000 messages by a new Strands agent: this project / the fastest other "
        "backend (bench.peers)",
        ("peers", "derived", "this_restore_ms"),
        (("peers", "derived", "best_peer_restore_ms"),),
        None,
    ),
    Ratio(
        "append_floor_vs_seed",
        "the append floor / the seed's append, 16 connections: the most any service on this "
        "stack (FastAPI + asyncpg + the same INSERT) could be above the seed",
        ("scenarios", "floor_append_c16", "rps"),
        (("scenarios", "seed_append_c16", "rps"),),
        None,
    ),
    Ratio(
        "get_agent_vs_seed",
        "GET agent, warm cache, default settings (strict), 16 connections, req/s / the seed's",
        ("scenarios", "get_agent_strict_warm_c16", "rps"),
        (("scenarios", "seed_get_agent_c16", "rps"),),
        None,
    ),
    Ratio(
        "strict_cache_speedup_small",
        "strict mode: warm-cache GET of a small agent / CACHE_TTL_SECONDS=0 (16 connections)",
        ("scenarios", "get_agent_strict_warm_c16", "rps"),
        (("scenarios", "get_agent_cold_c16", "rps"),),
        None,
    ),
    Ratio(
        "bounded_vs_strict_warm",
        "GET agent warm: CACHE_MODE=bounded / strict req/s (16 connections)",
        ("scenarios", "get_agent_bounded_warm_c16", "rps"),
        (("scenarios", "get_agent_strict_warm_c16", "rps"),),
        None,
    ),
)


def _lookup(results: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = results
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def ratios(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for ratio in RATIOS:
        numerator = _lookup(results, ratio.numerator)
        parts = [_lookup(results, path) for path in ratio.denominator]
        denominator = None if None in parts else sum(p for p in parts if p is not None)
        measured = None
        if numerator is not None and denominator:
            measured = round(numerator / denominator, 3)
        met = None
        if ratio.target is not None:
            compare = {
                ">=": lambda m, t: m >= t,
                "<=": lambda m, t: m <= t,
                "<": lambda m, t: m < t,
            }[ratio.op]
            met = measured is not None and compare(measured, ratio.target)
        out[ratio.key] = {
            "description": ratio.description,
            "target": None if ratio.target is None else f"{ratio.op} {ratio.target}",
            "measured": measured,
            "met": met,
            "numerator": {".".join(ratio.numerator): numerator},
            "denominator": {".".join(p): v for p, v in zip(ratio.denominator, parts, strict=True)},
        }
    return out


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:,.{digits}f}"
    return str(value)


def table(results: dict[str, Any]) -> str:
    """The human-readable summary printed at the end of a run."""
    lines = []
    head = (
        f"{'scenario':<40} {'conn':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'srv cpu':>7} {'srv us/req':>10} {'pg us/req':>9} {'gen cpu':>7} {'other':>5} "
        f"{'err':>4}"
    )
    lines += [head, "-" * len(head)]
    for name, s in results["scenarios"].items():
        mark = "*" if s.get("contended") else " "
        lines.append(
            f"{name:<39}{mark} {s['concurrency']:>4} {_fmt(s['rps'], 0):>9} {_fmt(s['p50_ms']):>8} "
            f"{_fmt(s['p99_ms']):>8} {_fmt(s.get('server_cpu'), 2):>7} "
            f"{_fmt(s.get('server_cpu_us_per_req'), 0):>10} "
            f"{_fmt(s.get('db_cpu_us_per_req'), 0):>9} {_fmt(s['gen_cpu'], 2):>7} "
            f"{_fmt(s.get('other_cpu'), 2):>5} {s['errors']:>4}"
        )
    contended = [name for name, s in results["scenarios"].items() if s.get("contended")]
    if contended:
        lines.append(
            f"* {len(contended)} scenario(s) measured while other work used more than "
            "0.3 cores of the machine (column 'other'): rerun on a quiet machine"
        )
    lines.append("")
    for section in ("client", "db_floor", "memory", "derived"):
        values = results.get(section, {})
        flat = []
        for key, value in values.items():
            inner = value.items() if isinstance(value, dict) else [("", value)]
            for sub, item in inner:
                if isinstance(item, int | float | str) and sub not in ("note",):
                    flat.append(f"{key}{'.' if sub else ''}{sub}={_fmt(item, 3)}")
        lines.append(f"{section}: " + ", ".join(flat))
    lines.append("")
    lines.append(f"{'ratio':<40} {'target':>8} {'measured':>9}  met")
    for key, r in results["ratios"].items():
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        lines.append(f"{key:<40} {r['target'] or 'info':>8} {_fmt(r['measured'], 3):>9}  {met}")
    return "\n".join(lines)


def clean(value: Any) -> Any:
    """`value` with NaN / infinities (no figure) as None, so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def write(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(clean(results), indent=2, allow_nan=False) + "\n")


def markdown(results: dict[str, Any]) -> str:
    """The figures as Markdown tables (for docs/performance.md)."""
    meta = results.get("meta", {})
    out = [
        f"Run of {meta.get('started')} (commit {meta.get('git', {}).get('commit')}"
        f"{', uncommitted changes' if meta.get('git', {}).get('dirty') else ''}), "
        f"{meta.get('cpus')} cores, {meta.get('duration_s')} s measured after "
        f"{meta.get('warmup_s')} s of warm-up per scenario, {meta.get('elapsed_s')} s in all.",
        "",
        "| scenario | conn | req/s | p50 ms | p99 ms | server CPU µs/req | PostgreSQL CPU "
        "µs/req | generator cores | other cores |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, s in results["scenarios"].items():
        flag = " \\*" if s.get("contended") else ""
        out.append(
            f"| {name}{flag} | {s['concurrency']} | {_fmt(s['rps'], 0)} | "
            f"{_fmt(s['p50_ms'])} | {_fmt(s['p99_ms'])} | "
            f"{_fmt(s.get('server_cpu_us_per_req'), 0)} | "
            f"{_fmt(s.get('db_cpu_us_per_req'), 0)} | {_fmt(s['gen_cpu'])} | "
            f"{_fmt(s.get('other_cpu'))} |"
        )
    out += ["", "| ratio | measured | target | met |", "|---|--:|--:|:-:|"]
    for key, r in results["ratios"].items():
        met = "-" if r["met"] is None else ("yes" if r["met"] else "**no**")
        out.append(
            f"| `{key}`: {r['description']} | {_fmt(r['measured'], 3)} | "
            f"{r['target'] or 'info'} | {met} |"
        )
    if results.get("peers"):
        from bench.peers import markdown as peers_markdown

        out += ["", peers_markdown(results["peers"])]
    return "\n".join(out)


if __name__ == "__main__":
    import sys

    from bench import BENCH_DIR

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else BENCH_DIR / "results.json"
    print(markdown(json.loads(source.read_text())))
