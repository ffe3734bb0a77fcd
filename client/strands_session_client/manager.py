"""``HTTPSessionManager``: Strands' ``RepositorySessionManager`` over ``HTTPSessionRepository``."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from strands.session.repository_session_manager import RepositorySessionManager

from .errors import InvalidSessionValueError
from .repository import HTTPSessionRepository


class HTTPSessionManager(RepositorySessionManager):
    """``RepositorySessionManager`` over ``HTTPSessionRepository``: the drop-in for Strands.

    ``Agent(session_manager=HTTPSessionManager(session_id="s1", base_url="http://..."))``, or
    ``session_manager=`` of a Graph or Swarm. Reads (or creates) the session on construction.

    Args:
        session_id: The session to restore, created if it does not exist.
        base_url: The service's root URL (default: the ``SESSION_BACKEND_URL`` variable).
        repository: An existing ``HTTPSessionRepository`` to use (then ``options`` must be
            empty, and ``close()`` leaves the repository open).
        **options: Passed to ``HTTPSessionRepository`` (``api_key``, timeouts, retries,
            ``optimistic``, ``client``, ``transport``…).
    """

    def __init__(
        self,
        session_id: str,
        base_url: str | None = None,
        *,
        repository: HTTPSessionRepository | None = None,
        **options: Any,
    ) -> None:
        """Connect to the service and read or create the session."""
        if repository is not None and (options or base_url):
            raise InvalidSessionValueError("pass either repository or base_url/options, not both")
        self._owns_repository = repository is None
        self.repository = repository or HTTPSessionRepository(base_url, **options)
        try:
            super().__init__(session_id=session_id, session_repository=self.repository)
        except BaseException:
            self.close()
            raise

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
