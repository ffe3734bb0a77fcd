"""``HTTPSessionManager``: Strands' ``RepositorySessionManager`` over ``HTTPSessionRepository``.

Two things differ from the stock manager, both in ``register_hooks``:

- The hooks that run during an invocation (a message added, the invocation or a multi-agent
  node finished) are coroutines that run the session work in a worker thread
  (``asyncio.to_thread``): an async application's event loop is never blocked for a round trip,
  and the agent still waits for each write, in order, as Strands expects.
- With ``write_behind=True`` the repository is a ``WriteBehindRepository``: writes are queued
  and sent in the background, and the end of every invocation is a barrier (``flush()``).

Extension points, for code that adds behaviour around an invocation (for example a session
lease): ``register_hooks`` calls ``_register_session_hooks(registry)``, which a wrapper can call
with its own registry; the barrier runs inside ``_after_invocation`` /
``_after_multi_agent_invocation``, so anything that must follow the last write (such as
releasing a lease) belongs after them. Request headers every
write must carry go into ``self.repository.default_headers``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from strands.hooks.events import (
    AfterInvocationEvent,
    AfterMultiAgentInvocationEvent,
    AfterNodeCallEvent,
    AgentInitializedEvent,
    MessageAddedEvent,
    MultiAgentInitializedEvent,
)
from strands.session.repository_session_manager import RepositorySessionManager

from .errors import InvalidSessionValueError, SessionBackendError
from .lease import ExclusiveHooks, SessionLease
from .repository import HTTPSessionRepository
from .write_behind import LINGER, WriteBehindRepository

if TYPE_CHECKING:
    from strands.hooks.registry import HookRegistry
    from strands.multiagent.base import MultiAgentBase
    from strands.types.agent import LocalAgent

logger = logging.getLogger(__name__)


class HTTPSessionManager(RepositorySessionManager):
    """``RepositorySessionManager`` over ``HTTPSessionRepository``: the drop-in for Strands.

    ``Agent(session_manager=HTTPSessionManager(session_id="s1", base_url="http://..."))``, or
    ``session_manager=`` of a Graph or Swarm. Reads (or creates) the session on construction.

    Args:
        session_id: The session to restore, created if it does not exist.
        base_url: The service's root URL (default: the ``SESSION_BACKEND_URL`` variable).
        repository: An existing ``HTTPSessionRepository`` to use (then ``options`` must be
            empty, and ``close()`` leaves the repository open).
        write_behind: Queue writes and send them from a background thread; everything is stored
            before an invocation returns, before any read, and on ``flush()`` / ``close()``.
            A crash in the middle of an invocation can lose that invocation's unsent writes.
        max_queued_writes: Bound of the write-behind queue (a full queue makes the agent wait).
        write_behind_linger: Seconds a burst of queued writes may gather before it is sent
            (default 0.02; the end of an invocation sends at once); 0: send each at once.
        exclusive: Hold the session's lease during every invocation, so that no other client
            writes the session meanwhile (see ``strands_session_client.lease``).
        lease_ttl: Seconds the lease lasts without renewal (it is renewed every third of it):
            how long a crashed holder keeps others waiting.
        lease_wait: Seconds to wait for a busy session before ``SessionBusyError``.
        **options: Passed to ``HTTPSessionRepository`` (``api_key``, timeouts, retries,
            ``optimistic``, ``client``, ``transport``…).
    """

    def __init__(
        self,
        session_id: str,
        base_url: str | None = None,
        *,
        repository: HTTPSessionRepository | None = None,
        write_behind: bool = False,
        max_queued_writes: int = 1000,
        write_behind_linger: float = LINGER,
        exclusive: bool = False,
        lease_ttl: float = 30.0,
        lease_wait: float = 30.0,
        **options: Any,
    ) -> None:
        """Connect to the service and read or create the session."""
        if repository is not None and (options or base_url):
            raise InvalidSessionValueError("pass either repository or base_url/options, not both")
        if repository is not None and exclusive:
            # The lease fences the repository's writes: it cannot be shared with another manager.
            raise InvalidSessionValueError(
                "exclusive=True builds its own repository: pass base_url"
            )
        self._owns_repository = repository is None
        self.repository = repository or HTTPSessionRepository(base_url, **options)
        self.write_behind: WriteBehindRepository | None = None
        if write_behind:
            self.write_behind = WriteBehindRepository(
                self.repository, max_queued=max_queued_writes, linger=write_behind_linger
            )
        self.exclusive: ExclusiveHooks | None = None
        try:
            if exclusive:
                lease = SessionLease(self.repository, session_id, ttl=lease_ttl, wait=lease_wait)
                self.exclusive = ExclusiveHooks(self, lease)
            super().__init__(
                session_id=session_id, session_repository=self.write_behind or self.repository
            )
        except BaseException:
            self.close()
            raise

    # -- hooks ---------------------------------------------------------------------------------

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """Persist the agent (or Graph / Swarm) through this manager, off the event loop; with
        ``exclusive``, under the session's lease for each invocation."""
        if self.exclusive is None:
            self._register_session_hooks(registry)
        else:
            self.exclusive.register(registry, self._register_session_hooks)

    def _register_session_hooks(self, registry: Any) -> None:
        """The manager's own callbacks; code that wraps them (a lease around each invocation)
        registers them through this, and its after-invocation work follows the barrier."""
        # Construction-time events: Strands runs them synchronously, outside any invocation.
        registry.add_callback(AgentInitializedEvent, lambda event: self.initialize(event.agent))
        registry.add_callback(
            MultiAgentInitializedEvent, lambda event: self.initialize_multi_agent(event.source)
        )
        registry.add_callback(MessageAddedEvent, self._message_added)
        registry.add_callback(AfterInvocationEvent, self._after_invocation)
        registry.add_callback(AfterNodeCallEvent, self._node_finished)
        registry.add_callback(AfterMultiAgentInvocationEvent, self._after_multi_agent_invocation)

    async def _message_added(self, event: MessageAddedEvent) -> None:
        def store() -> None:
            self.append_message(event.message, event.agent)
            self.sync_agent(event.agent)

        await self._off_loop(store)

    async def _after_invocation(self, event: AfterInvocationEvent) -> None:
        await self._off_loop(self.sync_agent, event.agent)
        await self._barrier()

    async def _node_finished(self, event: AfterNodeCallEvent) -> None:
        await self._off_loop(self.sync_multi_agent, event.source)

    async def _after_multi_agent_invocation(self, event: AfterMultiAgentInvocationEvent) -> None:
        await self._off_loop(self.sync_multi_agent, event.source)
        await self._barrier()

    async def _off_loop(self, work: Callable[..., None], *args: Any) -> None:
        """Run session work without holding the event loop for a round trip.

        Queuing a write-behind write takes microseconds: it runs inline unless the queue is
        full. Anything that may wait on the network runs in a worker thread.
        """
        if self.write_behind is not None and self.write_behind.has_room():
            work(*args)
        else:
            await asyncio.to_thread(work, *args)

    async def _barrier(self) -> None:
        if self.write_behind is not None:
            await self.write_behind.flush_async()

    # -- exclusive sessions: small hooks; the logic is in .lease -------------------------------

    def initialize(self, agent: LocalAgent, **kwargs: Any) -> None:
        """Restore (or create) the agent in the session; under the lease when ``exclusive``."""
        if self.exclusive is None:
            super().initialize(agent, **kwargs)
        else:
            self.exclusive.held(
                ("agents", agent.agent_id),
                lambda: super(HTTPSessionManager, self).initialize(agent, **kwargs),
            )

    def initialize_multi_agent(self, source: MultiAgentBase, **kwargs: Any) -> None:
        """Restore (or create) a Graph's or Swarm's state; under the lease when ``exclusive``."""
        if self.exclusive is None:
            super().initialize_multi_agent(source, **kwargs)
        else:
            self.exclusive.held(
                ("multi-agents", source.id),
                lambda: super(HTTPSessionManager, self).initialize_multi_agent(source, **kwargs),
            )

    def _reload_agent(self, agent: LocalAgent) -> None:
        """Restore the agent from the session again, as Strands does when it is constructed."""
        self._latest_agent_message.pop(agent.agent_id, None)
        self._last_synced_internal_state.pop(agent.agent_id, None)
        self._is_new_session = False
        super().initialize(agent)

    def _reload_multi_agent(self, source: MultiAgentBase) -> None:
        """Restore a Graph's or Swarm's state from the session again."""
        state = self.session_repository.read_multi_agent(self.session_id, source.id)
        if state is not None:
            source.deserialize_state(state)

    # -- lifecycle -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Wait until every queued write is stored (write-behind); raise the first failure."""
        if self.write_behind is not None:
            self.write_behind.flush()

    def close(self) -> None:
        """Flush queued writes, then release the repository if this manager created it."""
        try:
            if self.write_behind is not None:
                self.write_behind.close()
        finally:
            if self._owns_repository:
                self.repository.close()

    def __enter__(self) -> HTTPSessionManager:
        """Use the manager as a context manager that closes it on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the manager; when the block already raised, a failed flush does not hide it."""
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except SessionBackendError as close_error:
            logger.warning("closing the session manager after an error failed too: %s", close_error)
