"""Start-up as a user meets it: errors waiting cannot fix stop at once with one line naming the
cause; a database that is not up yet is waited for (serve and migrate alike), one WARNING line
per attempt saying why; a busy port and `--help` answer plainly; Ctrl-C says the embedded
database stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

from service import migrate
from tests.support import ROOT, ServiceProcess, free_port, with_database

pytestmark = pytest.mark.timeout(120)


def run_module(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=ROOT,
        env={**os.environ, "PORT": str(free_port()), "LOG_FORMAT": "text", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def with_user(dsn: str, user: str) -> str:
    parts = urlsplit(dsn)
    return parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port or 5432}").geturl()


def permanent_cases(admin_dsn: str) -> list[tuple[str, str, str]]:
    """(DATABASE_URL, the category named, the cause named) for each kind of permanent error."""
    return [
        (
            with_database(admin_dsn, "does_not_exist"),
            "unknown database",
            'database "does_not_exist" does not exist',
        ),
        (
            with_user(admin_dsn, "no_such_role"),
            "authentication failed",
            'role "no_such_role" does not exist',
        ),
        # The test server offers no TLS: requiring it can never succeed.
        (admin_dsn + "?sslmode=require", "TLS settings", "sslmode"),
    ]


@pytest.mark.parametrize(
    ("command", "cases"), [((), 3), (("migrate",), 1)], ids=["serve", "migrate"]
)
def test_errors_waiting_cannot_fix_stop_at_once_with_one_line(admin_dsn, command, cases):
    for dsn, category, cause in permanent_cases(admin_dsn)[:cases]:
        # A long deadline: giving up at once must not depend on it.
        result = run_module(
            *command, env={"DATABASE_URL": dsn, "DB_CONNECT_DEADLINE_SECONDS": "60"}
        )
        output = result.stdout + result.stderr
        assert result.returncode == 1, output
        naming = [line for line in output.splitlines() if cause in line]
        assert len(naming) == 1, output
        assert "CRITICAL" in naming[0] and category in naming[0], naming
        assert "retrying" not in output, output


def test_an_unreachable_database_is_retried_with_the_reason_on_each_line():
    port = free_port()  # nothing listens there
    result = run_module(
        env={
            "DATABASE_URL": f"postgresql://app:pw@127.0.0.1:{port}/db",
            "DB_CONNECT_DEADLINE_SECONDS": "2",
        }
    )
    assert result.returncode == 1
    retries = [line for line in result.stderr.splitlines() if "retrying in" in line]
    assert retries, result.stderr
    assert all("WARNING" in r and "ConnectionRefusedError" in r for r in retries), retries
    assert "giving up" in result.stderr and "ConnectionRefusedError" in result.stderr


@contextmanager
def forwarder(listen_port: int, target: tuple[str, int]) -> Iterator[None]:
    """A TCP forwarder on 127.0.0.1:listen_port to `target`: a database that has come up."""
    server = socket.create_server(("127.0.0.1", listen_port))
    stop = threading.Event()

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        server.close()


def test_migrate_waits_for_a_database_that_comes_up(empty_database_url):
    real = urlsplit(empty_database_url)
    port = free_port()
    late = real._replace(netloc=f"{real.username}@127.0.0.1:{port}").geturl()
    env = {**os.environ, "DATABASE_URL": late, "DB_CONNECT_DEADLINE_SECONDS": "60"}
    env |= {"LOG_FORMAT": "text"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "migrate"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # blocks until the first failed attempt is logged
        assert "WARNING" in first and "not reachable yet" in first, first
        assert "ConnectionRefusedError" in first and "retrying in" in first, first
        with forwarder(port, (real.hostname or "127.0.0.1", real.port or 5432)):
            out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"applied {len(migrate.expected())} migration(s)" in out


def test_a_busy_port_says_to_set_port(database_url):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = run_module(env={"DATABASE_URL": database_url, "PORT": str(port)})
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"port {port}" in lines[0] and "already in use" in lines[0] and "PORT=" in lines[0]
    assert "Errno" not in result.stderr


def test_help_explains_the_commands():
    result = run_module("--help", env={})
    assert result.returncode == 0, result.stderr
    for word in ("serve", "migrate", "config", "prune", "DATABASE_URL", "PORT", "/docs"):
        assert word in result.stdout, word
    wrong = run_module("serv", env={})
    assert wrong.returncode == 2 and "--help" in wrong.stderr and "'serv'" in wrong.stderr


def test_ctrl_c_says_the_embedded_database_stopped(tmp_path):
    data = tmp_path / "pg"
    env = {"DATABASE_URL": "", "EMBEDDED_DATA_DIR": str(data), "LOG_FORMAT": "text"}
    proc = ServiceProcess(env, tmp_path / "service.log")
    try:
        proc.wait_ready(timeout=60)
        postmaster = int((data / "postmaster.pid").read_text().splitlines()[0])
        proc.signal(signal.SIGINT)
        proc.proc.wait(30)
    finally:
        proc.stop()
    assert "stopped the embedded database" in proc.log_path.read_text()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{postmaster}"):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{postmaster}")
