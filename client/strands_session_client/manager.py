"""``HTTPSessionManager``: Strands' ``RepositorySessionManager`` over ``HTTPSessionRepository``."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from strands.session.repository_session_manager import RepositorySessionManager

from .errors import InvalidSessionValueError
from .lease import ExclusiveHooks, SessionLease
from .repository import HTTPSessionRepository

if TYPE_CHECKING:
    from strands.hooks.registry import HookRegistry
    from strands.multiagent.base import MultiAgentBase
    from strands.types.agent import LocalAgent


class HTTPSessionManager(RepositorySessionManager):
    """``RepositorySessionManager`` over ``HTTPSessionRepository``: the drop-in for Strands.

    ``Agent(session_manager=HTTPSessionManager(session_id="s1", base_url="http://..."))``, or
    ``session_manager=`` of a Graph or Swarm. Reads (or creates) the session on construction.

    Args:
        session_id: The session to restore, created if it does not exist.
        base_url: The service's root URL (default: the ``SESSION_BACKEND_URL`` variable).
        repository: An existing ``HTTPSessionRepository`` to use (then ``options`` must be
            empty, and ``close()`` leaves the repository open).
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
        self.exclusive: ExclusiveHooks | None = None
        try:
            if exclusive:
                lease = SessionLease(self.repository, session_id, ttl=lease_ttl, wait=lease_wait)
                self.exclusive = ExclusiveHooks(self, lease)
            super().__init__(session_id=session_id, session_repository=self.repository)
        except BaseException:
            self.close()
            raise

    # -- exclusive sessions: small hooks; the logic is in .lease -------------------------------

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """Strands' hooks, with the lease around each invocation when ``exclusive``."""
        if self.exclusive is None:
            super().register_hooks(registry, **kwargs)
        else:
            self.exclusive.register(
                registry, lambda r: super(HTTPSessionManager, self).register_hooks(r, **kwargs)
            )

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

    def close(self) -> None:
        """Close the repository's connection pool, if this manager created it."""
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
        """Close the manager."""
        self.close()
