"""The seed: the project's first implementation, measured in the same run as the service.

The service's first commit (`SEED_COMMIT`: schema, named SQL, the asyncpg pool and the v1
routes, before any of the performance work) is extracted with `git archive` into the run's
scratch folder and served as `python -m service` from there, with the same interpreter and
libraries as the service, the same uvicorn settings and the same environment rules
(`servers.clean_environment`), on a fresh database of its own on the same PostgreSQL. Only the
code differs. It gets the same data shapes and the same load: appends of the same 1 KB body at
16 connections (one agent per connection) and warm GETs of the same small agent.

Without git history (an exported tarball, a shallow clone) the seed is not measured and the
results say why; the ratios against it are then reported as missing.
"""

from __future__ import annotations

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from bench import ROOT, servers

if TYPE_CHECKING:
    from bench.run import Bench

SEED_COMMIT = "919078c4e7a041c53e6c5236e8ebc50e500e739d"
SCENARIOS = ("seed_append_c16", "seed_get_agent_c16")
_CONNECTIONS = 16


def extract(scratch: Path) -> Path:
    """The seed's tree under `scratch/seed`; RuntimeError when git cannot produce it."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", SEED_COMMIT, "service", "sql", "migrations"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise RuntimeError(
            f"git archive {SEED_COMMIT[:7]}: {archive.stderr.decode(errors='replace').strip()}"
        )
    tree = scratch / "seed"
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    response = http.post(
        path, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    if response.status_code not in (200, 201):
        raise RuntimeError(f"seed: POST {path}: {response.status_code} {response.text}")
    return response


def measure(bench: Bench, admin: str) -> dict[str, Any]:
    """Serve the seed on a fresh database and run its scenarios (stored with the others)."""
    from bench.data import (
        API,
        BODY_TEMPLATE,
        CONVERSATION_MANAGER,
        SESSION,
        SMALL_STATE,
        agent_path,
    )

    try:
        tree = extract(bench.scratch)
    except RuntimeError as exc:
        return {"available": False, "error": str(exc)}
    appenders = [f"append-c{_CONNECTIONS}-{i}" for i in range(_CONNECTIONS)]
    main_database = bench.database
    with servers.BenchDatabase(admin) as database:
        # PYTHONPATH (the seed's tree) replaces the service's own checkout in the environment.
        env = {"DATABASE_URL": database.dsn, "PYTHONPATH": str(tree)}
        with servers.ServerProcess("seed", "service", env, bench.scratch) as server:
            server.wait_ready()
            with httpx.Client(base_url=server.url, timeout=60.0) as http:
                _post(http, "/api/v1/sessions", {"session_id": SESSION, "session_type": "AGENT"})
                for agent, state in [("small", SMALL_STATE)] + [(a, {}) for a in appenders]:
                    _post(
                        http,
                        f"{API}/agents",
                        {
                            "agent_id": agent,
                            "state": state,
                            "conversation_manager_state": CONVERSATION_MANAGER,
                        },
                    )
            bench.database = database.name  # sample the seed database's PostgreSQL backends
            try:
                bench.load(
                    server,
                    "seed_append_c16",
                    method="POST",
                    concurrency=_CONNECTIONS,
                    paths=[agent_path(a, "messages") for a in appenders],
                    body={"template": BODY_TEMPLATE, "batch": None, "start": 0},
                )
                bench.load(
                    server, "seed_get_agent_c16", paths=[agent_path("small")], concurrency=16
                )
            finally:
                bench.database = main_database
    return {"available": True, "commit": SEED_COMMIT, "tree": "git archive of the commit"}
