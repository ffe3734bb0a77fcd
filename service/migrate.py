"""Schema migrations with yoyo: `migrations/NNNN.<slug>.sql` (+ `.rollback.sql`)."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from yoyo import get_backend, read_migrations

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
log = logging.getLogger(__name__)


def _yoyo_url(dsn: str) -> str:
    # yoyo picks its driver from the scheme; psycopg 3 is the one installed.
    return urlunsplit(urlsplit(dsn)._replace(scheme="postgresql+psycopg"))


def expected() -> frozenset[str]:
    """Ids of every migration in migrations/: the schema is at head when all are applied."""
    return frozenset(m.id for m in read_migrations(str(MIGRATIONS_DIR)))


def apply(dsn: str) -> list[str]:
    """Apply pending migrations under yoyo's lock (safe with several replicas); their ids."""
    backend = get_backend(_yoyo_url(dsn))
    try:
        migrations = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        applied = [m.id for m in pending]
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        return applied
    finally:
        backend.connection.close()
