"""The asyncpg pool and the ways to run database work: reads, and the one write path.

`Database.transaction(work, *args)` acquires a connection, opens a transaction, awaits
`work(conn, *args)` and commits; a 2xx is built only after it returns, so a COMMIT that fails is
never reported as success. `Database.run(work, *args)` is the same without BEGIN/COMMIT, for work
whose writes are one statement (atomic by itself: PostgreSQL commits it before answering) and
for reads: it saves two round trips per request. The body is a function rather than an
`async with` block because a transient failure (lost connection, serialization failure,
deadlock, a plan invalidated by a migration, pool exhaustion) re-runs the whole of it with backoff.

`Database.write(write, kind, work, *args)` is the path of every write request (see its
docstring): exactly once under the request's idempotency key, across the service's own retries.
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
    key_reused,
    outcome_unknown,
)
from service.queries import Q
from service.settings import Pooler, Settings
from service.writes import HEADER, Key, Write

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
# Errors that already say what happened, raised through a transaction as they are.
_EXPECTED: tuple[type[Exception], ...] = (ServiceError, *DATABASE_ERRORS)
Work = Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]]
# A write's work: (conn, key, *args) -> (status, what the answer is built from).
WriteWork = Callable[Concatenate[asyncpg.Connection, Key, P], Awaitable[tuple[int, Any]]]
# A per-session check run inside each write's transaction before the write itself; it raises a
# ServiceError to refuse the write (nothing is applied, nothing recorded under the key).
PreWriteCheck = Callable[[asyncpg.Connection, Write], Awaitable[None]]
APPLICATION_NAME = "strands-session-backend"
# How each kind of answer is read back from the key's record (sql/idempotency.sql).
_REPLAY = {
    "empty": "replay_empty",
    "session": "replay_session",
    "agent": "replay_agent",
    "message": "replay_message",
    "messages": "replay_messages",
    "multi_agent": "replay_multi_agent",
    "lease": "replay_lease",
}
_KEY_CONSTRAINT = "idempotency_keys_pkey"


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


class Database:
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
        self._retrying_transaction = backoff.on_exception(
            backoff.expo,
            TRANSIENT,
            max_tries=settings.db_retry_attempts,
            max_value=2.0,
            factor=0.05,
            jitter=backoff.full_jitter,
            on_backoff=self._on_backoff,
            giveup=lambda _exc: self.pool is None,
        )(self._transaction_once)
        self._retrying_write = backoff.on_exception(
            backoff.expo,
            TRANSIENT,
            max_tries=settings.db_retry_attempts,
            max_value=2.0,
            factor=0.05,
            jitter=backoff.full_jitter,
            on_backoff=self._on_backoff,
            giveup=lambda _exc: self.pool is None,
        )(self._write_once)

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
                return await self._retrying_transaction(atomic, work, *args, **kwargs)
        except TimeoutError:
            raise ServiceUnavailable("the database did not answer in time; retry shortly") from None
        except DATABASE_ERRORS as exc:
            raise from_database(exc) from exc

    async def _transaction_once(
        self, atomic: bool, work: Work[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        assert self.pool is not None
        done = False
        try:
            async with self.pool.acquire(timeout=self.settings.db_acquire_timeout_seconds) as conn:
                try:
                    if atomic:
                        async with conn.transaction():
                            result = await work(cast(asyncpg.Connection, conn), *args, **kwargs)
                    else:
                        result = await work(cast(asyncpg.Connection, conn), *args, **kwargs)
                except _EXPECTED:
                    raise
                except Exception as exc:
                    # A connection that died mid-statement surfaces as whatever asyncpg was
                    # doing (InternalClientError from the ROLLBACK, say): the cause is the
                    # connection, and the transaction can be retried.
                    if _closed(cast(asyncpg.Connection, conn)):
                        raise ConnectionLost(f"connection lost: {exc.__class__.__name__}") from exc
                    raise
                done = True
        except Exception as exc:
            if not done:
                raise
            # Committed; only handing the connection back failed (it died just after COMMIT).
            log.info("connection lost after COMMIT (%s)", exc.__class__.__name__)
        return result

    async def write(
        self,
        write: Write,
        kind: str,
        work: Callable[..., Awaitable[tuple[int, Any]]],
        *args: Any,
        atomic: bool = False,
    ) -> tuple[int, Any]:
        """The one path of every write request: applied exactly once; (status, answer rows).

        `work(conn, write.key, *args)` performs the write and records `write.key` with its answer
        in the same statement (a CTE) or transaction, returning (status, row | rows | None); the
        SQL of sql/*.sql does so (migration 0005). `kind` names how a recorded answer is read
        back: empty, session, agent, message, messages or multi_agent. The work runs as one
        statement (atomic by itself), or in one transaction when `atomic` or when per-session
        checks are registered.

        Per-session pre-write checks: when `write.session_id` is set, every function of
        `self.pre_write` runs first, inside the write's transaction, given the connection and the
        `Write` (session id, headers). That is the place for a check that must hold when the
        write commits (a lease's fencing token, say); it raises a ServiceError to refuse, and
        then nothing is applied or recorded.

        Exactly once:
        - a key the client sent is looked up first: recorded for the same request, its outcome
          is the answer (status and body); recorded for another request, 422;
        - two requests under one key at once: the second's key insert waits for the first and
          fails on the primary key, undoing the second; it answers the first's outcome;
        - when the connection is lost mid-write, the retry (same key; the service made one if
          the client sent none) first ends the lost server process (pg_terminate_backend,
          waiting), so that the first attempt has committed or rolled back, then reads the key:
          recorded, that outcome; not recorded, the write runs again. When the first attempt
          cannot be settled, a retry never answers a 4xx from the write: it answers 503 with
          Retry-After, asking to retry with the same key (given in the Idempotency-Key header).
        """
        if not self.accepting:
            raise ServiceUnavailable("the database is not connected yet; retry shortly")
        attempt = _Attempt()
        try:
            async with asyncio.timeout(self.settings.request_timeout_seconds):
                return await self._retrying_write(attempt, write, kind, atomic, work, *args)
        except TimeoutError:
            if attempt.in_doubt:
                raise outcome_unknown(HEADER, write.key.value) from None
            raise ServiceUnavailable("the database did not answer in time; retry shortly") from None
        except DATABASE_ERRORS as exc:
            if attempt.in_doubt and isinstance(exc, TRANSIENT):
                raise outcome_unknown(HEADER, write.key.value) from exc
            raise from_database(exc) from exc

    async def _write_once(
        self,
        attempt: _Attempt,
        write: Write,
        kind: str,
        atomic: bool,
        work: Callable[..., Awaitable[tuple[int, Any]]],
        *args: Any,
    ) -> tuple[int, Any]:
        assert self.pool is not None
        key = write.key
        outcome: tuple[int, Any] | None = None
        try:
            async with self.pool.acquire(
                timeout=self.settings.db_acquire_timeout_seconds
            ) as pooled:
                conn = cast(asyncpg.Connection, pooled)
                if attempt.lost_pid is not None and await self._settle(conn, attempt.lost_pid):
                    attempt.lost_pid = None
                if attempt.tries or key.given:
                    outcome = await self._replay(conn, kind, key)
                    if outcome is not None:
                        return outcome
                attempt.tries += 1
                outcome = await self._apply_once(attempt, conn, write, kind, atomic, work, args)
        except Exception as exc:
            if outcome is None:
                raise
            # Committed; only handing the connection back failed (it died just after COMMIT).
            log.info("connection lost after a write committed (%s)", exc.__class__.__name__)
        assert outcome is not None
        return outcome

    async def _apply_once(
        self,
        attempt: _Attempt,
        conn: asyncpg.Connection,
        write: Write,
        kind: str,
        atomic: bool,
        work: Callable[..., Awaitable[tuple[int, Any]]],
        args: tuple[Any, ...],
    ) -> tuple[int, Any]:
        key = write.key
        pid = conn.get_server_pid()
        attempt.running = True
        try:
            checks = self.pre_write if write.session_id is not None else []
            if atomic or checks:
                async with conn.transaction():
                    for check in checks:
                        await check(conn, write)
                    outcome = await work(conn, key, *args)
            else:
                outcome = await work(conn, key, *args)
        except asyncpg.UniqueViolationError as exc:
            attempt.running = False
            if exc.constraint_name != _KEY_CONSTRAINT:
                raise
            # Another request under this key committed first (we waited for it).
            replayed = await self._replay(conn, kind, key)
            if replayed is None:
                raise
            return replayed
        except ServiceError:
            attempt.running = False
            if attempt.tries > 1 or key.given:
                # The 404/409/412 may be the doing of an earlier attempt or a concurrent twin.
                replayed = await self._replay(conn, kind, key)
                if replayed is not None:
                    return replayed
                if attempt.lost_pid is not None:
                    raise outcome_unknown(HEADER, key.value) from None
            raise
        except Exception as exc:
            attempt.running = False
            if isinstance(exc, _CONNECTION_ERRORS) or _closed(conn):
                # The write may have committed: the next attempt settles it by the key.
                self.lost_writes += 1
                attempt.lost_pid = pid
                raise ConnectionLost(f"connection lost: {exc.__class__.__name__}") from exc
            raise
        attempt.running = False
        if attempt.tries > 1 and attempt.lost_pid is not None and outcome[0] == 200:
            # An unrecorded "identical repeat" while the first attempt is unsettled: it may be
            # that attempt's own doing, whose answer is recorded.
            replayed = await self._replay(conn, kind, key)
            if replayed is not None:
                return replayed
        return outcome

    async def _replay(
        self, conn: asyncpg.Connection, kind: str, key: Key
    ) -> tuple[int, Any] | None:
        """The recorded outcome of `key`, None when there is none; 422 for another request."""
        rows = await conn.fetch(Q[_REPLAY[kind]], key.value, key.fingerprint)
        if not rows:
            return None
        if not rows[0]["same"]:
            raise key_reused(HEADER)
        self.replayed += 1
        status = int(rows[0]["status"])
        if kind == "empty":
            return status, None
        if kind == "messages":
            return status, list(rows)
        return status, rows[0]

    async def _settle(self, conn: asyncpg.Connection, pid: int) -> bool:
        """End the server process of a lost write and wait for it: True once it is gone."""
        if not self.settings.db_settle_lost_writes:
            return False
        try:
            await conn.fetch(Q["terminate_backend"], pid, SETTLE_WAIT_MS, APPLICATION_NAME)
            gone = not await conn.fetchval(Q["backend_alive"], pid)
        except asyncpg.PostgresError as exc:
            log.warning("cannot settle a lost write's server process %d: %s", pid, exc)
            return False
        if not gone:
            log.warning("the server process %d of a lost write is still running", pid)
        return gone

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


# A lost write's server process gets this long to end once terminated.
SETTLE_WAIT_MS = 5000
_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
)


def _closed(conn: asyncpg.Connection) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:  # already detached from the pool: it was lost
        return True


class _Attempt:
    """What the attempts of one write know about each other."""

    __slots__ = ("lost_pid", "running", "tries")

    def __init__(self) -> None:
        self.tries = 0
        self.running = False  # the work is in flight: its outcome is not known yet
        self.lost_pid: int | None = None  # server process of a lost attempt, not yet settled

    @property
    def in_doubt(self) -> bool:
        """An attempt may have applied the write without the service knowing."""
        return self.running or self.lost_pid is not None
