"""`python -m bench.instructions`: CPU instructions per append, service against the append floor.

Timings on a shared 2-core machine move by a third from one minute to the next; instruction
counts do not. This runs the ASGI app in process (no uvicorn, no socket: the app alone, and the
same small driver for both), under valgrind's callgrind, and counts the instructions of 400
appends of the benchmark's 1 KB message from 16 concurrent tasks. Collection is switched on
(`callgrind_control -i on`) only around them, after start-up and a warm-up of 800 appends, so
imports and migrations do not count. Repeated runs agree within 0.3%.

    python -m bench.instructions            # the service and the append floor, and their ratio
    python -m bench.instructions --service  # the service only (e.g. before and after a change)

The append floor is `bench.floor_app`'s: FastAPI, an asyncpg pool and the same statement. Both
append through the same driver, whose own instructions count in both. Needs `valgrind`
(Debian: `apt-get install valgrind`); the database comes from `bench.servers.admin_dsn()`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import ROOT, data, servers

APPENDS = 400  # counted
WARMUP = 800
TASKS = 16
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


async def _drive(dsn: str, floor: bool) -> None:
    """In the child, under callgrind: set up, warm up, then count APPENDS appends."""
    import orjson

    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(database_url=dsn), dsn)
    target: Any = app
    async with app.router.lifespan_context(app):
        for _ in range(600):  # start-up (migrations) finishes in the background
            if app.state.services.db.accepting:
                break
            await asyncio.sleep(0.05)

        async def call(asgi: Any, method: str, path: str, body: bytes) -> int:
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": [
                    (b"host", b"127.0.0.1"),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 80),
                "state": {},
            }
            pending = [{"type": "http.request", "body": body, "more_body": False}]
            status: list[int] = []

            async def receive() -> dict[str, Any]:
                if pending:
                    return pending.pop()
                await asyncio.sleep(3600)  # never asked: the body came whole
                raise AssertionError

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            await asgi(scope, receive, send)
            return status[0]

        session = "instr-" + os.urandom(4).hex()
        created = await call(
            app,
            "POST",
            "/api/v1/sessions",
            orjson.dumps({"session_id": session, "session_type": "AGENT"}),
        )
        assert created == 201, created
        for i in range(TASKS):
            body = orjson.dumps(
                {"agent_id": f"a{i}", "state": {}, "conversation_manager_state": {}}
            )
            assert await call(app, "POST", f"/api/v1/sessions/{session}/agents", body) == 201
        if floor:
            os.environ["BENCH_FLOOR_DSN"] = dsn
            from bench.floor_app import append_factory

            target = append_factory()
            lifespan = target.router.lifespan_context(target)
            await lifespan.__aenter__()
        ids = itertools.count()

        async def appends(agent: int, count: int) -> None:
            path = f"/api/v1/sessions/{session}/agents/a{agent}/messages"
            for _ in range(count):
                body = data.BODY_TEMPLATE.replace("__ID__", str(next(ids))).encode()
                status = await call(target, "POST", path, body)
                assert status == 201, status

        await asyncio.gather(*(appends(i, WARMUP // TASKS) for i in range(TASKS)))
        _callgrind("on")
        await asyncio.gather(*(appends(i, APPENDS // TASKS) for i in range(TASKS)))
        _callgrind("off")
        if floor:
            await lifespan.__aexit__(None, None, None)


def _callgrind(state: str) -> None:
    subprocess.run(
        ["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True
    )


def count(dsn: str, floor: bool) -> float:
    """Instructions per append of the service (or of the floor) in a child under callgrind."""
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as scratch:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={Path(scratch) / 'callgrind.out'}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--child",
            dsn,
            *(["--floor"] if floor else []),
        ]
        env = servers.clean_environment({"LOG_LEVEL": "WARNING"})
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return int(found.group(1).replace(",", "")) / APPENDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--service", action="store_true", help="the service only")
    parser.add_argument("--child", metavar="DSN", help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import uvloop

        uvloop.run(_drive(args.child, args.floor))
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    with servers.admin_dsn() as (admin, _where), servers.BenchDatabase(admin) as db:
        service = count(db.dsn, floor=False)
        print(f"service:      {service:,.0f} instructions per append")
        if not args.service:
            floor = count(db.dsn, floor=True)
            print(f"append floor: {floor:,.0f} instructions per append")
            print(f"service / floor: {service / floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
