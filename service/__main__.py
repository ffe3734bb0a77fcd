"""`python -m service [serve|migrate]`: settings, the database, migrations, uvicorn."""

from __future__ import annotations

import logging
import os
import signal
import sys

import uvicorn
from pydantic import ValidationError

from service import migrate
from service.embedded import EmbeddedError, EmbeddedPostgres
from service.settings import Settings, redact_dsn

log = logging.getLogger("service")
USAGE = "usage: python -m service [serve|migrate]"


def load_settings() -> Settings:
    """Settings from the environment; a bad value exits with one line naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        message = err["msg"].removeprefix("Value error, ")
        if err["loc"]:  # model-level checks name the variable in the message itself
            message = f"{str(err['loc'][0]).upper()}: {message}"
        sys.exit(f"configuration error: {message}")


def database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The DSN to use, starting the embedded default database when DATABASE_URL is unset."""
    if settings.dsn:
        return settings.dsn, None
    embedded = EmbeddedPostgres(settings.embedded_data_dir)
    try:
        dsn = embedded.start()
    except EmbeddedError as exc:
        sys.exit(f"cannot start the embedded database: {exc}")
    log.info("DATABASE_URL is unset: using the embedded database in %s (%s)",
             settings.embedded_data_dir, dsn)
    return dsn, embedded


def _exit_code() -> int:
    from service import app as app_module  # imported late: only `serve` needs it

    return 1 if app_module.FATAL else 0


def _exit_after_shutdown(_signum: int, _frame: object) -> None:
    sys.exit(_exit_code())


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command not in ("serve", "migrate"):
        print(USAGE, file=sys.stderr)
        return 2
    settings = load_settings()
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dsn, embedded = database_url(settings)
    try:
        if command == "migrate":
            applied = migrate.apply(dsn)
            print(f"applied {len(applied)} migration(s) to {redact_dsn(dsn)}")
            return 0
        # Workers build their own app from the environment: hand them the resolved DSN.
        os.environ["DATABASE_URL"] = dsn
        # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully; turn that
        # into a normal exit so the `finally` below (stopping the embedded database) runs.
        signal.signal(signal.SIGTERM, _exit_after_shutdown)
        uvicorn.run(
            "service.app:factory",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level.lower(),
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
            access_log=False,
        )
        return _exit_code()
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
