"""The expiry sweeper: deletes expired sessions, with everything under them, in the background.

Queries already treat an expired session as absent, so the sweeper only reclaims space; it may
run late without anyone seeing an expired session. Every service process runs one (from the
lifespan, once start-up is complete), every SWEEP_INTERVAL_SECONDS (with jitter, so replicas
started together do not collide each time). A round runs on a dedicated connection holding the
session-level advisory lock `sweep_lock`: only one replica sweeps at a time, and the others skip
the round. The lock goes with the connection, so a replica that dies mid-round frees it. A round
deletes batches of SWEEP_BATCH_SIZE sessions, each in its own short transaction (`FOR UPDATE
SKIP LOCKED`: a session a write holds, FOR KEY SHARE until it commits, is left for the next round;
the delete checks the expiry again on the row it locked, so an expiry moved meanwhile holds),
until a batch comes back short. Then it forgets idempotency keys older than
IDEMPOTENCY_TTL_SECONDS, in batches of the same size. The connection goes to
DATABASE_DIRECT_URL: a session-level lock taken through a transaction-pooling PgBouncer would stay
on a server connection other clients then use.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

import asyncpg

from service.queries import Q
from service.settings import Settings

log = logging.getLogger(__name__)
APPLICATION_NAME = "strands-session-backend-sweeper"


async def sweep(
    conn: asyncpg.Connection,
    batch_size: int,
    on_batch: Callable[[int], None] = lambda n: None,
    key_ttl_seconds: float = 86_400.0,
) -> tuple[int, int] | None:
    """One round on `conn`: (sessions deleted, batches), or None when another holds the lock.

    `on_batch(n)` follows each committed batch. The lock is session-level: the caller closes
    `conn` (or it stays held). Idempotency keys older than `key_ttl_seconds` go too.
    """
    if not await conn.fetchval(Q["sweep_lock"]):
        return None
    deleted = batches = 0
    while True:
        async with conn.transaction():
            rows = await conn.fetch(Q["sweep_expired_sessions"], batch_size)
        on_batch(len(rows))
        deleted += len(rows)
        batches += 1
        if len(rows) < batch_size:
            break
    while (
        await conn.fetchval(Q["sweep_idempotency_keys"], key_ttl_seconds, batch_size) == batch_size
    ):
        pass
    return deleted, batches


class Sweeper:
    """The background task of one process, with its figures (`deleted` feeds /metrics)."""

    def __init__(self, dsn: str, settings: Settings) -> None:
        self.dsn = settings.direct_dsn(dsn)
        self.interval = settings.sweep_interval_seconds
        self.batch_size = settings.sweep_batch_size
        self.key_ttl_seconds = settings.idempotency_ttl_seconds
        self.statement_timeout_ms = int(settings.db_statement_timeout_seconds * 1000)
        self.connect_timeout = settings.db_connect_timeout_seconds
        self.deleted = 0  # sessions deleted by this process since start-up
        self.rounds = 0  # rounds this process swept (held the lock)
        self._task: asyncio.Task[None] | None = None

    def _count(self, deleted: int) -> None:
        self.deleted += deleted

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="expired-session-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval * random.uniform(0.8, 1.2))
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again
                log.warning(
                    "sweeping expired sessions failed (%s: %s); retrying in %.0fs",
                    exc.__class__.__name__,
                    exc,
                    self.interval,
                )

    async def round(self) -> int | None:
        """Sweep once on a fresh connection; the number deleted, or None when skipped."""
        conn = await asyncpg.connect(
            self.dsn,
            timeout=self.connect_timeout,
            server_settings={
                "application_name": APPLICATION_NAME,
                "statement_timeout": str(self.statement_timeout_ms),
            },
        )
        started = time.perf_counter()
        try:
            outcome = await sweep(conn, self.batch_size, self._count, self.key_ttl_seconds)
        except BaseException:
            conn.terminate()  # closing gracefully could wait on a cancelled statement
            raise
        await conn.close()
        if outcome is None:
            log.debug("another replica is sweeping expired sessions; skipped")
            return None
        deleted, batches = outcome
        self.rounds += 1
        if deleted:
            log.info(
                "swept %d expired session(s) in %d batch(es), %.3fs",
                deleted,
                batches,
                time.perf_counter() - started,
            )
        return deleted
