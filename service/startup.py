"""Reaching the database at start-up: wait for what time can fix, stop at once on what it cannot.

Both the server's start-up and `python -m service migrate` go through `reach_then`: it opens one
probe connection (asyncpg), then runs the caller's work (migrations, the pool). A database that
is not up yet (connection refused, name not resolvable yet, "the database system is starting
up", too many connections) is retried with jittered exponential backoff until the deadline,
logging one WARNING line per attempt that says why. An error no amount of waiting fixes (an
unknown database or role, a wrong password, TLS settings the server or client rejects, a
malformed DSN) raises `PermanentDatabaseError` on the first attempt, naming the cause.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import backoff
import psycopg

from service.errors import TRANSIENT
from service.settings import redact_dsn

log = logging.getLogger("service")
T = TypeVar("T")

# psycopg's errors come from the migrations (yoyo), asyncpg's from the probe and the pool.
RETRIED: tuple[type[Exception], ...] = (*TRANSIENT, asyncpg.PostgresError, psycopg.Error)

_AUTH = (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
# What libpq says (through psycopg) for the same causes; it carries no SQLSTATE on connect.
_LIBPQ_PERMANENT = (
    ("does not exist", "unknown database or role"),
    ("password authentication failed", "authentication failed"),
    ("no pg_hba.conf entry", "authentication failed"),
    ("ssl", "TLS settings"),
    ("invalid sslmode", "TLS settings"),
    ("invalid connection option", "bad DATABASE_URL"),
)


class PermanentDatabaseError(RuntimeError):
    """The database refused us for a reason that waiting cannot fix; `str()` names it."""


class DatabaseUnreachable(RuntimeError):
    """The database did not answer before the deadline; `str()` gives the last reason."""


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line, for a log line a person reads."""
    text = " ".join(str(exc).split()) or "no detail"
    return f"{exc.__class__.__name__}: {text}"


def permanent_reason(exc: BaseException) -> str | None:
    """Why `exc` cannot be fixed by waiting (a short category and the cause), or `None`."""
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"unknown database: {exc}"
    if isinstance(exc, _AUTH):
        return f"authentication failed: {exc}"
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return f"not allowed: {exc}"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return f"TLS settings: {one_line(exc)}"
    if isinstance(exc, FileNotFoundError):
        # asyncpg reads sslrootcert / sslcert / sslkey itself and names no file.
        return f"TLS settings: a certificate or key file named in DATABASE_URL is missing ({exc})"
    if isinstance(exc, ConnectionError) and "ssl" in str(exc).lower():
        return f"TLS settings: {exc} (the server does not offer TLS; check sslmode)"
    if isinstance(exc, asyncpg.ClientConfigurationError):
        return f"bad DATABASE_URL: {exc}"
    if isinstance(exc, psycopg.OperationalError):
        text = " ".join(str(exc).split())
        lowered = text.lower()
        if "connection refused" in lowered or "could not translate host" in lowered:
            return None
        if "failed to resolve host" in lowered or "timeout" in lowered:
            return None
        for needle, category in _LIBPQ_PERMANENT:
            if needle in lowered:
                return f"{category}: {text.split('FATAL:')[-1].strip()}"
    return None


async def probe(dsn: str, connect_timeout: float) -> None:
    """Open one connection and close it: raises what connecting raises."""
    conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    await conn.close()


async def reach_then(
    dsn: str,
    work: Callable[[], Awaitable[T]],
    *,
    deadline: float,
    connect_timeout: float,
) -> T:
    """Probe the database, then `await work()`; retried on transient errors until `deadline`.

    Raises `PermanentDatabaseError` on the first error waiting cannot fix, and
    `DatabaseUnreachable` when the deadline passes.
    """
    where = redact_dsn(dsn)

    def waiting(details: Any) -> None:
        log.warning(
            "database at %s not reachable yet (%s); retrying in %.1fs",
            where,
            one_line(details["exception"]),
            details["wait"],
        )

    @backoff.on_exception(
        backoff.expo,
        RETRIED,
        max_value=5,
        max_time=deadline,
        jitter=backoff.full_jitter,
        giveup=lambda exc: permanent_reason(exc) is not None,
        on_backoff=waiting,
        logger=None,  # `waiting` and the caller say it, at the right levels
    )
    async def attempt() -> T:
        await probe(dsn, connect_timeout)
        return await work()

    try:
        return await attempt()
    except Exception as exc:
        reason = permanent_reason(exc)
        if reason is not None:
            raise PermanentDatabaseError(f"cannot use the database at {where}: {reason}") from exc
        if isinstance(exc, RETRIED):
            raise DatabaseUnreachable(
                f"cannot reach the database at {where} within {deadline:.0f}s "
                f"(last: {one_line(exc)}); giving up"
            ) from exc
        raise
