"""Cross-replica cache invalidation: LISTEN on a dedicated connection.

Writes send notices through triggers (migration 0002), delivered only on COMMIT. Each replica
listens on its own connection (not a pooled one: a pooled connection would drop the LISTEN on
release) and drops the named entries at once. That connection goes to DATABASE_DIRECT_URL: a
transaction-pooling PgBouncer would hand the LISTEN's server connection to other clients and
never deliver a notice. A lost listener connection means notices may have been missed: the cache
is cleared, bypassed in `bounded` mode until the listener is back, and the connection
re-established with backoff. A periodic round trip notices a connection that died silently.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import orjson

from service.cache import ResponseCache, agent_key
from service.queries import Q

log = logging.getLogger(__name__)
CHANNEL = "session_cache"
APPLICATION_NAME = "strands-session-backend-listener"


class InvalidationListener:
    """LISTEN on `dsn` (a direct connection to PostgreSQL) and drop what the notices name."""

    def __init__(self, dsn: str, cache: ResponseCache, heartbeat_seconds: float = 5.0) -> None:
        self.dsn = dsn
        self.cache = cache
        self.heartbeat_seconds = heartbeat_seconds
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cache-invalidation-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _on_notice(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        try:
            kind, session_id, *rest = orjson.loads(str(payload))
        except (ValueError, TypeError):
            log.warning("ignoring a malformed cache notice")
            return
        if kind == "s":
            self.cache.drop_session_nowait(session_id)
        elif kind == "a" and rest:
            self.cache.drop_nowait(agent_key(session_id, rest[0]))

    async def _run(self) -> None:
        delay = 0.1
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self.dsn,
                    timeout=5,
                    # It only ever pings: no prepared statement to clash with a pooler's.
                    statement_cache_size=0,
                    server_settings={"application_name": APPLICATION_NAME},
                )
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_notice)
                # Anything cached before this point may have missed a notice.
                await self.cache.clear()
                self.cache.listening = True
                delay = 0.1
                while True:
                    try:
                        await asyncio.wait_for(lost.wait(), self.heartbeat_seconds)
                    except TimeoutError:
                        await asyncio.wait_for(conn.fetchval(Q["ping"]), self.heartbeat_seconds)
                    else:
                        raise ConnectionError("the listener's connection was closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: notices may be lost from here on
                if self.cache.listening:
                    log.warning(
                        "cache invalidation listener lost (%s); cache cleared",
                        exc.__class__.__name__,
                    )
                self.cache.listening = False
                await self.cache.clear()
                self.reconnects += 1
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
