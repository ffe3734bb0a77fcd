"""The in-process TTL cache in front of GET session and GET agent.

Entries hold the serialized response body with the row's version (and, for agents, the message
count, which message writes change without touching the agent row). It is filled only from
committed reads and dropped after every committed write of this process.

Modes (CACHE_MODE): `strict` checks every hit against the row's current version with a cheap
primary-key lookup, so no replica ever serves a value older than the latest commit: the cache
saves the transfer and encoding of large state, not the round trip. `bounded` serves hits without
touching the database and relies on invalidation, so another replica's write shows after the
notice arrives (milliseconds) or, at worst, after the TTL.

The cache is bounded twice: CACHE_MAX_ENTRIES entries and CACHE_MAX_BYTES bytes of bodies (the
oldest go first); a body larger than CACHE_MAX_ENTRY_SHARE of the byte bound is not cached at all.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiocache import SimpleMemoryCache
from aiocache.serializers import NullSerializer

from service.settings import CacheMode, Settings


@dataclass(frozen=True, slots=True)
class Entry:
    version: int
    message_count: int | None
    body: bytes
    # When the session (of an agent: its session) expires, as time.time(): a hit past it is a
    # miss in either mode, so an expired session is never served before the sweeper runs.
    expires_at: float | None = None


def session_key(session_id: str) -> str:
    return "s\0" + session_id


def agent_key(session_id: str, agent_id: str) -> str:
    return "a\0" + session_id + "\0" + agent_id


class ResponseCache:
    """A bounded aiocache memory cache of response bodies, with hit/miss figures."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.cache_enabled
        self.strict = settings.cache_mode is CacheMode.strict
        self.ttl = settings.cache_ttl_seconds
        self.max_entries = settings.cache_max_entries
        self.max_bytes = settings.cache_max_bytes
        self.max_entry_bytes = int(settings.cache_max_bytes * settings.cache_max_entry_share)
        self.bytes = 0  # bodies held
        # No per-call timeout: each would wrap a dict lookup in asyncio.wait_for.
        self._cache = SimpleMemoryCache(serializer=NullSerializer(), timeout=None)
        # Insertion order, with each body's size: the oldest is evicted first.
        self._keys: dict[str, int] = {}
        self._by_session: dict[str, set[str]] = {}
        self.hits = 0
        self.misses = 0
        # Bumped by every drop: a read that began before a drop must not refill the cache with
        # what it read, which may predate the write behind the drop.
        self.generation = 0
        # True while the invalidation listener is connected; `bounded` hits need it.
        self.listening = False

    async def get(self, key: str) -> Entry | None:
        if not self.enabled or not (self.strict or self.listening):
            return None
        entry: Entry | None = await self._cache.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= time.time():
            entry = None
        if entry is None and key in self._keys:
            await self._forget(key)  # expired
        return entry

    def count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    async def put(self, session_id: str, key: str, entry: Entry, generation: int) -> None:
        """Remember a committed read begun at `generation`; evicts the oldest past the bound."""
        if not self.enabled or generation != self.generation:
            return
        size = len(entry.body)
        if size > self.max_entry_bytes:
            await self._forget(key)  # an older, smaller body must not stay in its place
            return
        await self._forget(key)
        while self._keys and (
            len(self._keys) >= self.max_entries or self.bytes + size > self.max_bytes
        ):
            await self._forget(next(iter(self._keys)))
        await self._cache.set(key, entry, ttl=self.ttl)
        self._keys[key] = size
        self.bytes += size
        self._by_session.setdefault(session_id, set()).add(key)

    async def drop(self, key: str) -> None:
        self.generation += 1
        if self.enabled:
            await self._forget(key)

    async def drop_session(self, session_id: str) -> None:
        """Forget a session and every agent cached under it."""
        self.generation += 1
        for key in list(self._by_session.get(session_id, ())):
            await self._forget(key)
        await self._forget(session_key(session_id))

    def drop_nowait(self, key: str) -> None:
        """From a notice callback: stop refills at once, forget the entry soon after."""
        self.generation += 1
        asyncio.get_running_loop().create_task(self.drop(key))

    def drop_session_nowait(self, session_id: str) -> None:
        self.generation += 1
        asyncio.get_running_loop().create_task(self.drop_session(session_id))

    async def clear(self) -> None:
        self.generation += 1
        await self._cache.clear()
        self._keys.clear()
        self._by_session.clear()
        self.bytes = 0

    async def _forget(self, key: str) -> None:
        await self._cache.delete(key)
        self.bytes -= self._keys.pop(key, 0)
        session_id = key.split("\0")[1]
        keys = self._by_session.get(session_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_session[session_id]

    def figures(self) -> dict[str, int | str | bool]:
        return {
            "enabled": self.enabled,
            "mode": "strict" if self.strict else "bounded",
            "entries": len(self._keys),
            "bytes": self.bytes,
            "hits": self.hits,
            "misses": self.misses,
        }
