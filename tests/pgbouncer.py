"""A real PgBouncer in transaction mode in front of a PostgreSQL server, for tests and measurements.

Debian's `pgbouncer` (1.18: no prepared-statement support, so a transaction-pooled client must
not keep named prepared statements). It listens on a free port of 127.0.0.1, trusts every user
of the upstream server, and runs unprivileged (it refuses root): as `postgres` when started by
root. Missing, it is installed from Debian (`apt-get install pgbouncer`) when running as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.support import free_port


def through(dsn: str, port: int) -> str:
    """`dsn` with its host and port replaced by PgBouncer's (same user and database)."""
    parts = urlsplit(dsn)
    user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


def installed() -> str:
    """The pgbouncer program, installed from Debian first when missing and allowed."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary) and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", "pgbouncer"],
            env=env,
            check=True,
            capture_output=True,
        )
    if not os.path.exists(binary):
        raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
    return binary


class PgBouncer:
    """`with PgBouncer(upstream_dsn) as bouncer:` a transaction-pooling PgBouncer on
    `bouncer.port` for every database of the upstream server."""

    def __init__(self, upstream: str, pool_size: int = 20, **settings: object) -> None:
        parts = urlsplit(upstream)
        self.host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.pool_size = pool_size
        self.settings = settings
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None

    def __enter__(self) -> PgBouncer:
        binary = installed()
        self._dir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.port = free_port()
        extra = "".join(f"{key} = {value}\n" for key, value in self.settings.items())
        (self._dir / "users.txt").write_text(f'"{self.user}" ""\n')
        (self._dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={self.host} port={self.upstream_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self._dir / 'users.txt'}\n"
            "pool_mode = transaction\n"
            "max_client_conn = 500\n"
            f"default_pool_size = {self.pool_size}\n"
            # What DB_POOLER=transaction leaves to the pooler (docs/deploy.md).
            "idle_transaction_timeout = 20\n"
            "server_reset_query =\n" + extra
        )
        command = [binary, "-q", str(self._dir / "pgbouncer.ini")]
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chmod(self._dir, 0o755)
            command = ["runuser", "-u", entry.pw_name, "--", *command]
        self._log = open(self._dir / "pgbouncer.log", "wb")
        self._proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise TimeoutError(f"pgbouncer did not listen: {self.output()}")

    def output(self) -> str:
        assert self._dir is not None
        return (self._dir / "pgbouncer.log").read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._dir is not None:
            self._log.close()
            shutil.rmtree(self._dir, ignore_errors=True)

    def dsn(self, dsn: str) -> str:
        """`dsn` (a database of the upstream server) reached through this PgBouncer."""
        return through(dsn, self.port)
