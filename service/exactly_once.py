"""The one write path: every write request applied exactly once under its idempotency key.

`Database` (service.db) mixes this in; `Database.write(write, kind, work, *args)` is what every
write route calls (see its docstring). It lives apart from the pool and the read paths because
it is the part whose reasoning must be read whole: how a key is replayed, how a lost
connection's first attempt is settled before a retry, and when the only honest answer is 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import asyncpg

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
from service.settings import Settings
from service.writes import HEADER, Key, Write

log = logging.getLogger(__name__)

APPLICATION_NAME = "strands-session-backend"
# A per-session check run inside each write's transaction before the write itself; it raises a
# ServiceError to refuse the write (nothing is applied, nothing recorded under the key).
PreWriteCheck = Callable[[asyncpg.Connection, Write], Awaitable[None]]
# How each kind of answer is read back from the key's record (sql/idempotency.sql).
_REPLAY = {
    "empty": "replay_empty",
    "session": "replay_session",
    "agent": "replay_agent",
    "message": "replay_message",
    "messages": "replay_messages",
    "multi_agent": "replay_multi_agent",
    "lease": "replay_lease",
    "turn": "replay_turn",
}
_KEY_CONSTRAINT = "idempotency_keys_pkey"


class ExactlyOnceWrites:
    """`write()` and its attempts; the pool, settings and retry policy come from `Database`."""

    settings: Settings
    pool: asyncpg.Pool | None
    accepting: bool
    pre_write: list[PreWriteCheck]
    lost_writes: int
    replayed: int
    _retried_write: Callable[..., Awaitable[Any]] | None
    attempts: Callable[..., Awaitable[Any]]
    acquire: Callable[[], Awaitable[asyncpg.Connection]]

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
        - a repeat of a recorded key: the write runs, and its own insert of the key fails on the
          primary key, which undoes it; the recorded outcome is the answer (status and body), or
          422 when it was recorded for another request. No lookup precedes a first attempt (a
          round trip on every write for the rare repeat); what a repeat answers without
          recording, a 4xx or a create's identical-repeat 200, is looked up afterwards;
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
                outcome: tuple[int, Any] = await self.attempts(
                    self._write_once, self._retried_write, attempt, write, kind, atomic, work, *args
                )
                return outcome
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
        pool = self.pool
        assert pool is not None
        key = write.key
        outcome: tuple[int, Any] | None = None
        try:
            conn = await self.acquire()
            try:
                if attempt.tries:
                    outcome = await self._earlier_outcome(attempt, conn, kind, key)
                    if outcome is not None:
                        return outcome
                attempt.tries += 1
                outcome = await self._apply_once(attempt, conn, write, kind, atomic, work, args)
            finally:
                await pool.release(cast(Any, conn))  # the proxy `acquire` gave
        except Exception as exc:
            if outcome is None:
                raise
            # Committed; only handing the connection back failed (it died just after COMMIT).
            log.info("connection lost after a write committed (%s)", exc.__class__.__name__)
        assert outcome is not None
        return outcome

    async def _earlier_outcome(
        self, attempt: _Attempt, conn: asyncpg.Connection, kind: str, key: Key
    ) -> tuple[int, Any] | None:
        """Before a retry: settle a lost attempt, then the key's recorded outcome (None: none).

        The connection may die here too (the database shutting down, say): that is a lost
        connection like any other, and the next attempt looks again on another one.
        """
        try:
            if attempt.lost_pid is not None and await self._settle(conn, attempt.lost_pid):
                attempt.lost_pid = None
            return await self._replay(conn, kind, key)
        except Exception as exc:
            if isinstance(exc, _CONNECTION_ERRORS) or closed(conn):
                raise ConnectionLost(f"connection lost: {exc.__class__.__name__}") from exc
            raise

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
        try:
            pid = conn.get_server_pid()
        except asyncpg.InterfaceError as exc:  # died before the write began: nothing to settle
            raise ConnectionLost(f"connection lost: {exc.__class__.__name__}") from exc
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
            if isinstance(exc, _CONNECTION_ERRORS) or closed(conn):
                # The write may have committed: the next attempt settles it by the key.
                self.lost_writes += 1
                attempt.lost_pid = pid
                raise ConnectionLost(f"connection lost: {exc.__class__.__name__}") from exc
            raise
        attempt.running = False
        unsettled = attempt.tries > 1 and attempt.lost_pid is not None
        if outcome[0] == 200 and (unsettled or (key.given and write.creates)):
            # An unrecorded "identical repeat": it may be the doing of an earlier request (or an
            # unsettled attempt) under this key, whose recorded answer (a 201) is the answer.
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


# A lost write's server process gets this long to end once terminated.
SETTLE_WAIT_MS = 5000
_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
)


def closed(conn: asyncpg.Connection) -> bool:
    """Whether `conn` died (or was already detached from the pool after dying)."""
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
