"""The benchmark's database and server processes.

`admin_dsn()` finds a PostgreSQL that may create databases: `BENCH_DATABASE_URL`, else
`TEST_DATABASE_URL`, else 127.0.0.1:5432 when it answers, else a throwaway
`service.embedded.EmbeddedPostgres` in a temporary folder. `BenchDatabase` creates `bench_<hex>`
on it and drops it (WITH FORCE) at the end.

`ServerProcess` runs `python -m service` (or a floor app) as a real process on a free port, with
its output in a log file, and knows its CPU time and RSS (psutil, the whole process tree, so
uvicorn's worker processes count). Processes run in a scratch working directory with the
service's own variables removed from the inherited environment, so neither a developer's `.env`
nor their shell (API_KEYS, CACHE_MODE, ...) changes what is measured.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg

from bench import ROOT

LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextlib.contextmanager
def admin_dsn() -> Iterator[tuple[str, str]]:
    """(DSN allowed to create databases, where it came from)."""
    for variable in ("BENCH_DATABASE_URL", "TEST_DATABASE_URL"):
        given = os.environ.get(variable)
        if given:
            yield given, variable
            return
    if _answers(LOCAL_DSN):
        yield LOCAL_DSN, "127.0.0.1:5432"
        return
    from service.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="bench-pg-") as scratch:
        server = EmbeddedPostgres(Path(scratch) / "data")
        dsn = server.start()
        try:
            yield dsn, "embedded"
        finally:
            server.stop()


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


def redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


class BenchDatabase:
    """A fresh, empty database `bench_<hex>`; the service migrates it on its first start."""

    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.name = f"bench_{uuid.uuid4().hex[:12]}"
        self.dsn = with_database(admin, self.name)

    def _execute(self, sql: str) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql.encode())

    def __enter__(self) -> BenchDatabase:
        self._execute(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *_exc: object) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _service_variables() -> set[str]:
    from service.settings import Settings

    return {name.upper() for name in Settings.model_fields}


def clean_environment(overrides: dict[str, str]) -> dict[str, str]:
    """The inherited environment without the service's settings, plus `overrides`."""
    drop = _service_variables()
    env = {k: v for k, v in os.environ.items() if k.upper() not in drop}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    env.update(overrides)
    return env


class ServerProcess:
    """A server as a real process: `python -m <module> <args>` with HOST / PORT set."""

    def __init__(
        self, name: str, module: str, env: dict[str, str], log_dir: Path, args: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        full_env = clean_environment(
            {"HOST": "127.0.0.1", "PORT": str(self.port), "LOG_LEVEL": "WARNING", **env}
        )
        self._cwd = tempfile.TemporaryDirectory(prefix="bench-cwd-")
        self._log = open(self.log_path, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=self._cwd.name,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.ps = psutil.Process(self.proc.pid)

    def wait_ready(self, timeout: float = 60.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.url + "/health/ready", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.output()}")

    def tree(self) -> list[psutil.Process]:
        try:
            return [self.ps, *self.ps.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process and its workers so far."""
        total = 0.0
        for proc in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def rss(self) -> int:
        """Resident set size in bytes of the process and its workers."""
        total = 0
        for proc in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        self._cwd.cleanup()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def service(
    name: str, dsn: str, log_dir: Path, *, wait: bool = True, **settings: str
) -> ServerProcess:
    """`python -m service` on `dsn` with the given settings (e.g. CACHE_MODE="bounded");
    ready unless `wait` is False (then call `wait_ready()` before use)."""
    env = {"DATABASE_URL": dsn, **{k.upper(): str(v) for k, v in settings.items()}}
    server = ServerProcess(name, "service", env, log_dir)
    return server.wait_ready() if wait else server


def floor(
    kind: str,
    log_dir: Path,
    agent_body: Path,
    message_body: Path,
    workers: int = 1,
    *,
    wait: bool = True,
) -> ServerProcess:
    """The bare `kind` (fastapi | starlette) app under the service's uvicorn settings."""
    env = {
        "WORKERS": str(workers),
        "BENCH_FLOOR_AGENT_BODY": str(agent_body),
        "BENCH_FLOOR_MESSAGE_BODY": str(message_body),
    }
    name = f"floor-{kind}-w{workers}"
    server = ServerProcess(name, "bench.floor_app", env, log_dir, (kind,))
    return server.wait_ready() if wait else server


def append_floor(dsn: str, log_dir: Path, *, wait: bool = True) -> ServerProcess:
    """The append floor (`bench.floor_app append`) on database `dsn`, as the service is served."""
    server = ServerProcess(
        "floor-append", "bench.floor_app", {"BENCH_FLOOR_DSN": dsn}, log_dir, ("append",)
    )
    return server.wait_ready() if wait else server


def postgres_cpu_seconds(database: str | None = None) -> float | None:
    """CPU time of the local PostgreSQL processes working for `database` (its backends, plus the
    WAL writer, checkpointer and background writer, which every commit leans on); None when
    there are none to see (a remote server)."""
    shared = ("walwriter", "checkpointer", "background writer")
    total, seen = 0.0, False
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] not in ("postgres", "postmaster"):
            continue
        command = " ".join(proc.info["cmdline"] or ())
        if database is not None and not (
            f" {database} " in command or any(s in command for s in shared)
        ):
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = proc.cpu_times()
            total += times.user + times.system
            seen = True
    return total if seen else None


def machine_busy_seconds() -> float:
    """CPU seconds spent machine-wide (all cores) on anything but idling, since boot."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)
