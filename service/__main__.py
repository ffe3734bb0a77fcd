"""`python -m service [serve|migrate|config|prune]`: settings, the database, migrations, uvicorn."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import sys
import tempfile
from enum import Enum
from pathlib import Path

import uvicorn
from pydantic import SecretStr, ValidationError

from service import lifecycle, logs, migrate, telemetry
from service.embedded import EmbeddedError, EmbeddedPostgres
from service.settings import Settings, redact_dsn

log = logging.getLogger("service")
USAGE = "usage: python -m service [serve|migrate|config|prune --older-than AGE [--dry-run]]"


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


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command not in ("serve", "migrate", "config", "prune"):
        print(USAGE, file=sys.stderr)
        return 2
    pruning = lifecycle.options(argv[1:]) if command == "prune" else None  # bad ones exit 2
    settings = load_settings()
    if command == "config":
        print(describe(settings))
        return 0
    logs.configure(settings)
    dsn, embedded = database_url(settings)
    try:
        if command == "migrate":
            applied = migrate.apply(dsn)
            print(f"applied {len(applied)} migration(s) to {redact_dsn(dsn)}")
            return 0
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
            embedded.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
