"""The asyncpg pool and the ways to run database work: reads, and the one write path.

`Database.transaction(work, *args)` acquires a connection, opens a transaction, awaits
`work(conn, *args)` and commits; a 2xx is built only after it returns, so a COMMIT that fails is
never reported as success. `Database.run(work, *args)` is the same without BEGIN/COMMIT, for work
whose writes are one statement (atomic by itself: PostgreSQL commits it before answering) and
for reads: it saves two round trips per request. The body is a function rather than an
`async with` block because a transient failure (lost connection, serialization failure,
deadlock, a plan invalidated by a migration, pool exhaustion) re-runs the whole of it with backoff.

`Database.write(write, kind, work, *args)` is the path of every write request: exactly once
under the request's idempotency key, across the service's own retries (service.exactly_once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import asyncpg
import backoff
import orjson

from service import jsonio, telemetry
from service.errors import (
    DATABASE_ERRORS,
    TRANSIENT,
    ConnectionLost,
    ServiceError,
    ServiceUnavailable,
    from_database,
)
from service.exactly_once import APPLICATION_NAME, ExactlyOnceWrites, PreWriteCheck, closed
from service.queries import Q
from service.settings import Pooler, Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
# Errors that already say what happened, raised through a transaction as they are.
_EXPECTED: tuple[type[Exception], ...] = (ServiceError, *DATABASE_ERRORS)
Work = Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]]


def _encode_json(value: Any) -> bytes:
    # Handlers pass documents already serialized (bytes); anything else is serialized here.
    return value if isinstance(value, bytes) else jsonio.dumps(value)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Once per connection: `json` travels as raw text both ways.

    Reads come back as `orjson.Fragment`s, embedded into responses without being parsed, which
    keeps the stored text (key order, escapes, long numbers) exactly and costs nothing.
    """
    await conn.set_type_codec(
        "json",
        schema="pg_catalog",
        encoder=_encode_json,
        decoder=orjson.Fragment,
        format="binary",
    )


async def _keep_session(_conn: asyncpg.Connection) -> None:
    return None


def _session_settings(s: Settings) -> dict[str, Any]:
    """The pool's per-connection settings: startup parameters, or a client-side statement
    timeout where a transaction pooler stands in between.

    PgBouncer refuses startup parameters it does not track (its `ignore_startup_parameters`
    would drop them silently), and a `SET` would reach only one of its server connections.
    So behind one the statement timeout is asyncpg's `command_timeout`: past it asyncpg sends a
    cancel request, which PgBouncer forwards to the server connection running the statement.
    The idle-in-transaction limit is then PgBouncer's `idle_transaction_timeout`
    (docs/deploy.md).
    """
    timeout_ms = int(s.db_statement_timeout_seconds * 1000)
    if s.db_pooler is Pooler.transaction:
        return {
            "command_timeout": s.db_statement_timeout_seconds,
            "server_settings": {"application_name": APPLICATION_NAME},
        }
    return {
        "server_settings": {
            "application_name": APPLICATION_NAME,
            "statement_timeout": str(timeout_ms),
            "idle_in_transaction_session_timeout": str(timeout_ms * 2),
        }
    }


class Database(ExactlyOnceWrites):
    """The pool of one service process, with retries and health figures."""

    def __init__(self, settings: Settings, dsn: str) -> None:
        self.settings = settings
        self.dsn = dsn
        self.pool: asyncpg.Pool | None = None
        self.accepting = False  # set once start-up (migrations, cursor key) is complete
        self.retries = 0
        # Exports hold a pooled connection while they stream: at most this many at once, so
        # that they never take the connections the other requests need.
        self.exports = asyncio.Semaphore(settings.export_max_concurrent)
        # Checks run inside every write under a session, before it (see `write`).
        self.pre_write: list[PreWriteCheck] = []
        # Writes whose connection was lost mid-flight, and how many of those were found out.
        self.lost_writes = 0
        self.replayed = 0
        # Transient errors re-run the whole unit of work (a transaction, or a write's attempt):
        # the first retry at once, the others spaced by backoff (see `attempts`).
        self._retried_transaction: Callable[..., Awaitable[Any]] | None = None
        self._retried_write: Callable[..., Awaitable[Any]] | None = None
        if settings.db_retry_attempts > 1:
            retrying = backoff.on_exception(
                backoff.expo,
                TRANSIENT,
                max_tries=settings.db_retry_attempts - 1,  # after the first attempt
                max_value=2.0,
                factor=0.05,
                jitter=backoff.full_jitter,
                on_backoff=self._on_backoff,
                giveup=lambda _exc: self.pool is None,
            )
            self._retried_transaction = retrying(self._transaction_once)
            self._retried_write = retrying(self._write_once)

    async def connect(self) -> None:
        """Open the pool; raises when the database cannot be reached."""
        s = self.settings
        self.pool = await asyncpg.create_pool(
            self.dsn,
            min_size=s.db_pool_min_size,
            max_size=s.db_pool_max_size,
            timeout=s.db_connect_timeout_seconds,
            statement_cache_size=s.db_statement_cache_size,
            init=init_connection,
            # Pooled connections hold no session state (settings come with the connection,
            # transactions always end): skip asyncpg's reset query, a round trip per release.
            # asyncpg still rolls back a transaction left open.
            reset=_keep_session,
            connection_class=telemetry.connection_class(),
            **_session_settings(s),
        )

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await asyncio.wait_for(pool.close(), timeout=self.settings.shutdown_grace_seconds)

    async def transaction(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `work(conn, *args)` in one transaction, retried whole on transient errors."""
        return await self._guarded(True, work, *args, **kwargs)

    async def run(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `work(conn, *args)` without a transaction block: reads, one-statement writes."""
        return await self._guarded(False, work, *args, **kwargs)

    async def _guarded(
        self, atomic: bool, work: Work[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if not self.accepting:
            raise ServiceUnavailable("the database is not connected yet; retry shortly")
        try:
            async with asyncio.timeout(self.settings.request_timeout_seconds):
                return await self.attempts(
                    self._transaction_once, self._retried_transaction, atomic, work, *args, **kwargs
                )
        except TimeoutError:
            raise ServiceUnavailable("the database did not answer in time; retry shortly") from None
        except DATABASE_ERRORS as exc:
            raise from_database(exc) from exc

    async def _transaction_once(
        self, atomic: bool, work: Work[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        pool = self.pool
        assert pool is not None
        done = False
        try:
            conn = await self.acquire()
            try:
                if atomic:
                    async with conn.transaction():
                        result = await work(conn, *args, **kwargs)
                else:
                    result = await work(conn, *args, **kwargs)
            except _EXPECTED:
                raise
            except Exception as exc:
                # A connection that died mid-statement surfaces as whatever asyncpg was
                # doing (InternalClientError from the ROLLBACK, say): the cause is the
                # connection, and the transaction can be retried.
                if closed(conn):
                    raise ConnectionLost(f"connection lost: {exc.__class__.__name__}") from exc
                raise
            finally:
                await pool.release(cast(Any, conn))  # the proxy `acquire` gave
            done = True
        except Exception as exc:
            if not done:
                raise
            # Committed; only handing the connection back failed (it died just after COMMIT).
            log.info("connection lost after COMMIT (%s)", exc.__class__.__name__)
        return result

    async def acquire(self) -> asyncpg.Connection:
        """A pooled connection (give it back with `pool.release`), waited for at most
        DB_ACQUIRE_TIMEOUT_SECONDS.

        The wait is bounded by `asyncio.timeout` rather than asyncpg's `acquire(timeout=...)`:
        on Python 3.11 asyncpg runs a timed acquire through its own `wait_for`, as a task of its
        own, and times the release again, which an append paid for in CPU on every request.
        """
        assert self.pool is not None
        async with asyncio.timeout(self.settings.db_acquire_timeout_seconds):
            return cast(asyncpg.Connection, await self.pool.acquire())

    async def attempts(
        self,
        once: Callable[..., Awaitable[T]],
        retried: Callable[..., Awaitable[T]] | None,
        *args: Any,
        **kwargs: Any,
    ) -> T:
        """`once(*args)`; after a transient error, `retried(*args)`: `once` under backoff, for
        the other DB_RETRY_ATTEMPTS - 1 attempts.

        The first attempt runs outside backoff's wrapper, which sets up its wait generator and
        the details of an attempt on every call: 3% of an append's CPU, for the rare retry. The
        first retry follows at once (a lost connection is replaced by another of the pool's);
        backoff spaces the ones after it.
        """
        try:
            return await once(*args, **kwargs)
        except TRANSIENT as exc:
            if retried is None or self.pool is None:
                raise
            self._on_backoff({"wait": 0.0, "tries": 1, "exception": exc})
        return await retried(*args, **kwargs)

    def _on_backoff(self, details: Any) -> None:
        self.retries += 1
        log.warning(
            "transient database error, retrying the transaction in %.2fs (attempt %d): %s",
            details["wait"],
            details["tries"],
            details.get("exception").__class__.__name__,
        )

    async def ping(self) -> float:
        """Seconds one trivial round trip takes; raises when the database is unreachable."""
        started = time.perf_counter()
        await self.probe(lambda conn: conn.fetchval(Q["ping"]))
        return time.perf_counter() - started

    async def probe(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Health checks: one attempt, bounded in time, allowed before start-up completes."""
        if self.pool is None:
            raise ServiceUnavailable("the database is not connected")
        try:
            async with asyncio.timeout(self.settings.db_acquire_timeout_seconds):
                async with self.pool.acquire() as conn:
                    return await work(cast(asyncpg.Connection, conn))
        except DATABASE_ERRORS as exc:
            raise ServiceUnavailable(
                f"the database is unreachable ({exc.__class__.__name__})"
            ) from exc

    def pool_figures(self) -> dict[str, int]:
        pool = self.pool
        if pool is None:
            return {"size": 0, "idle": 0, "min": 0, "max": self.settings.db_pool_max_size}
        return {
            "size": pool.get_size(),
            "idle": pool.get_idle_size(),
            "min": pool.get_min_size(),
            "max": pool.get_max_size(),
        }
