"""``HTTPSessionRepository``: a Strands ``SessionRepository`` stored in the session service, over
one pooled ``httpx.Client``."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from strands.session.session_repository import SessionRepository
from strands.types.session import Session, SessionAgent, SessionMessage

from .codec import _Request
from .errors import SessionBackendError
from .operations import _Operation, _SessionOperations
from .retry import (
    _DEFAULTS,
    _RETRY_EXCEPTIONS,
    _check_client_options,
    _client_options,
    _raise_if_retryable,
    _RetryableFailure,
)

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

_T = TypeVar("_T")


class HTTPSessionRepository(_SessionOperations, SessionRepository):
    """A Strands ``SessionRepository`` stored in the session service, over one pooled client.

    Args:
        base_url: The service's root URL (default: the ``SESSION_BACKEND_URL`` variable).
        api_key: Sent as ``Authorization: Bearer``; default ``SESSION_BACKEND_API_KEY``, if set.
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait for an answer (and to send a body).
        max_retry_time: Stop starting retries after this many seconds (None: no limit). With the
            defaults a refused connection or a run of 503/429 raises within about a minute, a
            server that accepts but never answers within about two.
        max_tries: Stop after this many attempts (None: bounded by ``max_retry_time`` only).
        initial_backoff, max_backoff: Bounds of the exponential, fully jittered waits.
        max_retry_after: Longest ``Retry-After`` honoured, in seconds.
        optimistic: Send ``If-Match`` with the version last seen when updating an agent or a
            multi-agent state, and raise ``SessionVersionConflictError`` when another process
            changed it meanwhile. Off by default: the last writer wins, as in Strands.
        client: An ``httpx.Client`` to use as is (its base URL, headers, timeouts) instead of
            building one; ``close()`` leaves it open.
        transport: An ``httpx`` transport for the built client (tests: ``httpx.MockTransport``).
        max_connections: Size of the keep-alive pool.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        connect_timeout: float = _DEFAULTS["connect_timeout"],
        read_timeout: float = _DEFAULTS["read_timeout"],
        max_retry_time: float | None = _DEFAULTS["max_retry_time"],
        max_tries: int | None = _DEFAULTS["max_tries"],
        initial_backoff: float = _DEFAULTS["initial_backoff"],
        max_backoff: float = _DEFAULTS["max_backoff"],
        max_retry_after: float = _DEFAULTS["max_retry_after"],
        optimistic: bool = False,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 10,
    ) -> None:
        """Create the repository and its connection pool (no request is sent yet)."""
        super().__init__(
            optimistic=optimistic,
            max_retry_time=max_retry_time,
            max_tries=max_tries,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
        )
        _check_client_options(client, base_url, api_key)
        self._owns_client = client is None
        self._client = client or httpx.Client(
            transport=transport,
            **_client_options(base_url, api_key, connect_timeout, read_timeout, max_connections),
        )
        self._send = self._with_retries(self._send_once)

    def _send_once(self, request: _Request) -> httpx.Response:
        request.attempts += 1
        try:
            response = self._client.request(
                request.method,
                request.path,
                content=request.body,
                params=request.params,
                headers=request.headers,
            )
        except _RETRY_EXCEPTIONS as exc:
            raise _RetryableFailure(request, cause=exc) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise SessionBackendError(
                f"{request.method} {request.path}: {type(exc).__name__}: {exc}", code="transport"
            ) from exc
        return _raise_if_retryable(request, response)

    def _run(self, operation: _Operation[_T]) -> _T:
        try:
            request = next(operation)
            while True:
                try:
                    response = self._send(request)
                except _RetryableFailure as failure:
                    raise failure.give_up(self._client.base_url) from failure.cause
                request = operation.send(response)
        except StopIteration as stop:
            result: _T = stop.value
            return result
        finally:
            operation.close()

    def close(self) -> None:
        """Close the connection pool (unless the client was passed in)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> HTTPSessionRepository:
        """Use the repository as a context manager that closes it on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the repository."""
        self.close()

    def create_session(self, session: Session, **kwargs: Any) -> Session:
        """Create a session; an identical existing one is returned as stored (retry-safe)."""
        return self._run(self._op_create_session(session))

    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        """Read a session, or None when it does not exist."""
        return self._run(self._op_read_session(session_id))

    def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Delete a session with its agents, messages and multi-agent states; raise if missing."""
        self._run(self._op_delete_session(session_id))

    def create_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Create an agent in a session (an identical repeat succeeds)."""
        self._run(self._op_create_agent(session_id, session_agent))

    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        """Read an agent, or None when it (or its session) does not exist."""
        return self._run(self._op_read_agent(session_id, agent_id))

    def update_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Replace an agent's state, conversation manager state and internal state."""
        self._run(self._op_update_agent(session_id, session_agent))

    def create_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any
    ) -> None:
        """Store a message; a different one under the same id is overwritten with a warning."""
        self._run(self._op_create_message(session_id, agent_id, session_message))

    def read_message(
        self, session_id: str, agent_id: str, message_id: int, **kwargs: Any
    ) -> SessionMessage | None:
        """Read a message, or None when it does not exist."""
        return self._run(self._op_read_message(session_id, agent_id, message_id))

    def update_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any
    ) -> None:
        """Replace a message and its redaction; raise if it does not exist."""
        self._run(self._op_update_message(session_id, agent_id, session_message))

    def list_messages(
        self,
        session_id: str,
        agent_id: str,
        limit: int | None = None,
        offset: int = 0,
        **kwargs: Any,
    ) -> list[SessionMessage]:
        """Skip the ``offset`` oldest messages and return ``limit`` of the rest (None: all)."""
        return self._run(self._op_list_messages(session_id, agent_id, limit, offset))

    def create_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any
    ) -> None:
        """Store a Graph's or Swarm's ``serialize_state()``."""
        self._run(self._op_create_multi_agent(session_id, multi_agent))

    def read_multi_agent(
        self, session_id: str, multi_agent_id: str, **kwargs: Any
    ) -> dict[str, Any] | None:
        """Read a multi-agent state, or None when it does not exist."""
        return self._run(self._op_read_multi_agent(session_id, multi_agent_id))

    def update_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any
    ) -> None:
        """Replace a multi-agent state; raise if it does not exist."""
        self._run(self._op_update_multi_agent(session_id, multi_agent))
