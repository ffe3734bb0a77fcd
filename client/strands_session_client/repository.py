"""``HTTPSessionRepository``: a Strands ``SessionRepository`` stored in the session service, over
one pooled ``httpx.Client``."""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from strands.session.session_repository import SessionRepository
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from .codec import _STARTED, _is_stream, _MessageStream, _Request, _written
from .errors import SessionBackendError
from .operations import _Operation, _SessionOperations
from .retry import (
    _DEFAULTS,
    _RETRY_EXCEPTIONS,
    _attempt_timeout,
    _check_client_options,
    _client_options,
    _raise_if_retryable,
    _RetryableFailure,
    _shared_client,
    _transport_failure,
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
        max_retry_time: A call gives up this many seconds after its first attempt started
            (None: no limit); each attempt's timeouts are cut to what remains. With the default
            (12 s) a refused connection, a server that never answers and a run of 503/429 all
            raise ``SessionUnavailableError`` within 15 s.
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
        self._owns_client = client is None and transport is not None
        if client is not None:
            self._client = client
        else:
            options = _client_options(
                base_url, api_key, connect_timeout, read_timeout, max_connections
            )
            # Without a transport of its own, the repository uses the process's shared client
            # for these settings: building a repository then costs microseconds, and
            # connections stay alive from one repository to the next.
            if transport is None:
                self._client = _shared_client(options)
            else:
                self._client = httpx.Client(transport=transport, **options)
        self._send = self._with_retries(self._send_once)

    def _send_once(self, request: _Request) -> httpx.Response:
        request.attempts += 1
        try:
            timeout = _attempt_timeout(request, self.max_retry_time, self._client.timeout)
        except _RetryableFailure:
            request.attempts -= 1  # no attempt was made: the deadline had passed
            raise
        headers = {**self.default_headers, **request.headers} if self.default_headers else None
        try:
            response = self._client.send(
                self._client.build_request(
                    request.method,
                    request.path,
                    content=request.body,
                    params=request.params,
                    headers=headers or request.headers,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                    extensions={"trace": request.trace} if request.trace else None,
                ),
                stream=request.sink is not None,
            )
            if request.sink is not None:
                self._receive(request.sink, response)
        except _RETRY_EXCEPTIONS as exc:
            raise _transport_failure(request, exc) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise SessionBackendError(
                f"{request.method} {request.path}: {type(exc).__name__}: {exc}", code="transport"
            ) from exc
        return _raise_if_retryable(request, response)

    def _receive(self, sink: _MessageStream, response: httpx.Response) -> None:
        """Feed a streamed answer to `sink` as it arrives, or read it whole."""
        try:
            if _is_stream(response):
                with sink.receiving() as feed:
                    for chunk in response.iter_bytes():
                        feed(chunk)
            else:
                response.read()
        finally:
            response.close()

    def _run(self, operation: _Operation[_T]) -> _T:
        started: dict[int, tuple[_Request, Future[httpx.Response]]] = {}
        pool: ThreadPoolExecutor | None = None
        try:
            request = next(operation)
            while True:
                if request.ahead:  # sent from a thread of its own while the operation goes on
                    request.ahead = False
                    if pool is None:
                        pool = ThreadPoolExecutor(1, thread_name_prefix="strands-session-ahead")
                    written = threading.Event()
                    run = contextvars.copy_context().run
                    started[id(request)] = (
                        request,
                        pool.submit(run, self._ahead, request, written),
                    )
                    # Until the request is written the thread needs the interpreter; once it
                    # waits for the answer, parsing here no longer holds it up.
                    written.wait()
                    request = operation.send(_STARTED)
                    continue
                try:
                    if (ahead := started.pop(id(request), None)) is not None:
                        response = ahead[1].result()
                    else:
                        response = self._send(request)
                except _RetryableFailure as failure:
                    raise failure.give_up(self._client.base_url) from failure.cause
                request = operation.send(response)
        except StopIteration as stop:
            result: _T = stop.value
            return result
        finally:
            operation.close()
            if pool is not None:  # a request the operation did not wait for ends here too
                pool.shutdown(wait=True)

    def _ahead(self, request: _Request, written: threading.Event) -> httpx.Response:
        """Send a request asked for ahead, setting `written` once it is on its way (or done)."""
        request.trace = lambda name, _info: written.set() if _written(name) else None
        try:
            return self._send(request)
        finally:
            written.set()

    def close(self) -> None:
        """Release the repository. A client passed in, and the shared pool of repositories
        built without ``client``/``transport``, stay open (idle connections expire by
        themselves); a client built here for ``transport`` is closed."""
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

    def list_sessions(
        self,
        *,
        limit: int | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        session_type: SessionType | str | None = None,
        **kwargs: Any,
    ) -> list[Session]:
        """Sessions, newest first, following the service's pages (up to 1000 a request).

        ``limit`` caps how many (None: all); ``created_after`` / ``created_before`` (aware
        datetimes or ISO 8601 strings) and ``session_type`` are the service's filters.
        """
        return self._run(self._op_list_sessions(limit, created_after, created_before, session_type))

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

    def create_messages(
        self, session_id: str, agent_id: str, session_messages: list[SessionMessage], **kwargs: Any
    ) -> None:
        """Store consecutive messages of one agent in one request (all or nothing)."""
        self._run(self._op_create_messages(session_id, agent_id, session_messages))

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
