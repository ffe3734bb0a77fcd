"""A real `python -m service` process: serving, migrating, bad settings, the embedded database."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from service import migrate
from tests.support import ROOT, free_port

STOPPED = (0,)  # a graceful stop on SIGTERM exits 0


def run_module(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serves_crud_and_stops_cleanly_on_sigterm(service_process, empty_database_url):
    proc = service_process({"DATABASE_URL": empty_database_url})  # migrates on start
    with httpx.Client(base_url=proc.url) as http:
        assert http.post("/api/v1/sessions", json={"session_id": "p"}).status_code == 201
        assert http.get("/api/v1/sessions/p").json()["session_id"] == "p"
        health = http.get("/health").json()
        assert health["status"] == "ok" and health["database"]["schema_at_head"] is True
        assert health["pool"]["max"] == 10
    assert proc.stop() in STOPPED


def test_migrate_command_applies_then_has_nothing_to_do(empty_database_url):
    first = run_module("migrate", env={"DATABASE_URL": empty_database_url})
    assert first.returncode == 0, first.stderr
    assert f"applied {len(migrate.expected())} migration(s)" in first.stdout
    again = run_module("migrate", env={"DATABASE_URL": empty_database_url})
    assert again.returncode == 0 and "applied 0 migration(s)" in again.stdout


def test_not_ready_until_migrated(service_process, empty_database_url):
    proc = service_process(
        {"DATABASE_URL": empty_database_url, "MIGRATE_ON_START": "false"}, wait=False
    )
    with httpx.Client(base_url=proc.url) as http:
        ready = None
        for _ in range(200):  # until it is up and connected: then only the schema is missing
            try:
                assert http.get("/health/live").status_code == 200
                ready = http.get("/health/ready")
                if "migrate" in ready.json()["error"]["message"]:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        assert ready is not None and ready.status_code == 503
        assert ready.headers["retry-after"]
        assert "migrate" in ready.json()["error"]["message"]
        assert run_module("migrate", env={"DATABASE_URL": empty_database_url}).returncode == 0
        assert http.get("/health/ready").status_code == 200


def test_a_bad_setting_stops_start_up_with_one_line_naming_it():
    result = run_module(env={"PORT": "eighty", "DATABASE_URL": "postgresql://x@127.0.0.1/x"})
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "PORT" in lines[0], result.stderr
    result = run_module(env={"DATABASE_URL": "mysql://root:hunter2@localhost/db"})
    assert result.returncode != 0 and "DATABASE_URL" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_unreachable_database_gives_up_without_leaking_the_password():
    port = free_port()  # nothing listens there
    result = run_module(
        env={
            "DATABASE_URL": f"postgresql://app:s3cr3t-pw@127.0.0.1:{port}/db",
            "DB_CONNECT_DEADLINE_SECONDS": "2",
            "PORT": str(free_port()),
        }
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "s3cr3t-pw" not in output
    assert "giving up" in output
    assert "retrying in" in output  # each attempt is logged with its wait


def test_embedded_database_when_database_url_is_unset(service_process, tmp_path):
    data = tmp_path / "project" / ".data" / "postgres"
    env = {"DATABASE_URL": "", "EMBEDDED_DATA_DIR": str(data)}
    proc = service_process(env)
    assert "embedded database" in proc.output()
    with httpx.Client(base_url=proc.url) as http:
        assert http.post("/api/v1/sessions", json={"session_id": "kept"}).status_code == 201
    assert proc.stop() in STOPPED
    again = service_process(env)
    with httpx.Client(base_url=again.url) as http:
        assert http.get("/api/v1/sessions/kept").status_code == 200
    assert again.stop() in STOPPED
