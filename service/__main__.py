"""`python -m service [serve|migrate|config|prune]`: settings, the database, migrations, uvicorn."""

from __future__ import annotations

import asyncio
import atexit
import errno
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from enum import Enum
from pathlib import Path

import uvicorn
from pydantic import SecretStr, ValidationError

from service import lifecycle, logs, migrate, startup, telemetry
from service.embedded import EmbeddedError, EmbeddedPostgres
from service.settings import Settings, redact_dsn

log = logging.getLogger("service")
USAGE = "usage: python -m service [serve|migrate|config|prune --older-than AGE [--dry-run]]"
HELP = f"""{USAGE}

The Strands session backend: an HTTP session store for Strands agents, in PostgreSQL.

commands:
  serve      serve the HTTP API (the default); docs at http://HOST:PORT/docs
  migrate    apply the database migrations and exit; waits for a database that is still
             starting (up to DB_CONNECT_DEADLINE_SECONDS)
  config     print the effective configuration (passwords and keys as ***) and exit
  prune      delete sessions inactive for longer than AGE (`prune --help` for its options)

Configuration comes from the environment, then a .env file in the working directory:
  DATABASE_URL  postgresql://user:password@host:port/db (unset: an embedded PostgreSQL in
                EMBEDDED_DATA_DIR, ./.data/postgres by default)
  HOST, PORT    where to listen (default 127.0.0.1:8000)
  API_KEYS      comma-separated bearer keys; when set, /api/v1 requires one
  LOG_LEVEL, LOG_FORMAT   INFO / text by default
`python -m service config` lists every setting; README.md documents them.
"""


def load_settings() -> Settings:
    """Settings from the environment; a bad value exits with one line naming the variable."""
    try:
        settings = Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        message = err["msg"].removeprefix("Value error, ")
        if err["loc"]:  # model-level checks name the variable in the message itself
            message = f"{str(err['loc'][0]).upper()}: {message}"
        sys.exit(f"configuration error: {message}")
    try:
        telemetry.check(os.environ)
    except ValueError as exc:
        sys.exit(f"configuration error: {exc}")
    return settings


def _shown(value: object) -> str:
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return redact_dsn(secret) if "://" in secret else "***"
    if isinstance(value, list):
        return ",".join(_shown(item) for item in value)
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def describe(settings: Settings) -> str:
    """The effective configuration as NAME=value lines, secrets masked (`config` command)."""
    lines = [f"{name.upper()}={_shown(getattr(settings, name))}" for name in Settings.model_fields]
    for key in sorted(k for k in os.environ if k.startswith("OTEL_")):
        value = os.environ[key]
        lines.append(f"{key}={'***' if key.endswith('HEADERS') else redact_dsn(value)}")
    exporters = telemetry.exporters(os.environ)
    tracing = f"{','.join(exporters)} ({telemetry.protocol(os.environ)})" if exporters else "off"
    lines.append(f"# tracing: {tracing}")
    return "\n".join(lines)


def share_metrics(settings: Settings) -> None:
    """Give several workers one folder for their metrics (prometheus_client multiprocess mode),
    exported before any worker imports prometheus_client."""
    if settings.prometheus_multiproc_dir:
        folder = Path(settings.prometheus_multiproc_dir)
    elif settings.workers == 1:
        return
    else:
        folder = Path(tempfile.mkdtemp(prefix="strands-metrics-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("counter", "gauge", "histogram", "summary"):  # a previous run's figures
        for stale in folder.glob(f"{kind}_*.db"):
            stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The DSN to use, starting the embedded default database when DATABASE_URL is unset."""
    if settings.dsn:
        return settings.dsn, None
    embedded = EmbeddedPostgres(settings.embedded_data_dir)
    try:
        dsn = embedded.start()
    except EmbeddedError as exc:
        sys.exit(f"cannot start the embedded database: {exc}")
    log.info(
        "DATABASE_URL is unset: using the embedded database in %s (%s)",
        settings.embedded_data_dir,
        dsn,
    )
    return dsn, embedded


def _exit_code() -> int:
    from service import app as app_module  # imported late: only `serve` needs it

    return 1 if app_module.FATAL else 0


def _exit_after_shutdown(_signum: int, _frame: object) -> None:
    sys.exit(_exit_code())


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (already in use, not allowed), or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: a port in TIME_WAIT is free, a listening one is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is already in use (another server, or this one "
                    f"already running?): set PORT to a free port, e.g. `PORT={port + 1} make run`"
                )
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}; check HOST and PORT"
    return None


def _migrate(dsn: str, settings: Settings) -> int:
    """`migrate`: wait for the database like start-up does, then apply what is pending."""

    async def apply() -> list[str]:
        return await asyncio.to_thread(migrate.apply, dsn)

    try:
        applied = asyncio.run(
            startup.reach_then(
                dsn,
                apply,
                deadline=settings.db_connect_deadline_seconds,
                connect_timeout=settings.db_connect_timeout_seconds,
            )
        )
    except (startup.PermanentDatabaseError, startup.DatabaseUnreachable) as exc:
        log.critical("%s", exc)
        return 1
    print(f"applied {len(applied)} migration(s) to {redact_dsn(dsn)}")
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command in ("-h", "--help", "help"):
        print(HELP, end="")
        return 0
    if command not in ("serve", "migrate", "config", "prune"):
        print(
            f"{USAGE}\nunknown command {command!r}; `python -m service --help` explains them",
            file=sys.stderr,
        )
        return 2
    pruning = lifecycle.options(argv[1:]) if command == "prune" else None  # bad ones exit 2
    settings = load_settings()
    if command == "config":
        print(describe(settings))
        return 0
    logs.configure(settings)
    if command == "serve":
        problem = port_problem(settings.host, settings.port)
        if problem is not None:
            log.critical("%s", problem)
            return 1
    dsn, embedded = database_url(settings)
    try:
        if command == "migrate":
            return _migrate(dsn, settings)
        if pruning is not None:
            return lifecycle.run(dsn, pruning, settings)
        # Workers build their own app from the environment: hand them the resolved DSN.
        os.environ["DATABASE_URL"] = dsn
        share_metrics(settings)
        # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully; turn that
        # into a normal exit so the `finally` below (stopping the embedded database) runs.
        signal.signal(signal.SIGTERM, _exit_after_shutdown)
        uvicorn.run(
            "service.app:factory",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=None,  # levels come with log_config (uvicorn knows no WARN or FATAL)
            log_config=logs.dict_config(settings),
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
            access_log=False,
            # Agents pause between turns; a short keep-alive would reopen a connection each turn.
            timeout_keep_alive=75,
        )
        return _exit_code()
    finally:
        if embedded is not None:
            owned = embedded.started
            embedded.stop()
            if owned:
                log.info("stopped the embedded database (its data stays in %s)", embedded.data_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
