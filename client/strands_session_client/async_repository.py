"""``AsyncHTTPSessionRepository``: the repository's operations as coroutines on
``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
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
    _transport_failure,
)

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

_T = TypeVar("_T")


class AsyncHTTPSessionRepository(_SessionOperations):
    """The same operations as ``HTTPSessionRepository``, as coroutines on ``httpx.AsyncClient``.

    Strands calls session repositories synchronously; this variant is for async applications
    that read or write sessions themselves (APIs, workers, admin tools). Options are those of
    ``HTTPSessionRepository``; ``client`` is an ``httpx.AsyncClient`` and ``transport`` an
    ``httpx.AsyncBaseTransport``.
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
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
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
        self._client = client or httpx.AsyncClient(
            transport=transport,
            **_client_options(base_url, api_key, connect_timeout, read_timeout, max_connections),
        )
        self._send = self._with_retries(self._send_once)

    async def _send_once(self, request: _Request) -> httpx.Response:
        request.attempts += 1
        try:
            timeout = _attempt_timeout(request, self.max_retry_time, self._client.timeout)
        except _RetryableFailure:
            request.attempts -= 1  # no attempt was made: the deadline had passed
            raise
        headers = {**self.default_headers, **request.headers} if self.default_headers else None
        try:
            response = await self._client.send(
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
                await self._receive(request.sink, response)
        except _RETRY_EXCEPTIONS as exc:
            raise _transport_failure(request, exc) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise SessionBackendError(
                f"{request.method} {request.path}: {type(exc).__name__}: {exc}", code="transport"
            ) from exc
        return _raise_if_retryable(request, response)

    async def _receive(self, sink: _MessageStream, response: httpx.Response) -> None:
        """Feed a streamed answer to `sink` as it arrives, or read it whole."""
        try:
            if _is_stream(response):
                with sink.receiving() as feed:
                    async for chunk in response.aiter_bytes():
                        feed(chunk)
            else:
                await response.aread()
        finally:
            await response.aclose()

    async def _run(self, operation: _Operation[_T]) -> _T:
        started: dict[int, tuple[_Request, asyncio.Task[httpx.Response]]] = {}
        try:
            request = next(operation)
            while True:
                if request.ahead:  # sent by a task of its own while the operation goes on
                    request.ahead = False
                    written = asyncio.Event()
                    task = asyncio.create_task(self._ahead(request, written))
                    started[id(request)] = (request, task)
                    # The operation holds the loop while it parses: the request goes out first.
                    await written.wait()
                    request = operation.send(_STARTED)
                    continue
                try:
                    if (ahead := started.pop(id(request), None)) is not None:
                        response = await ahead[1]
                    else:
                        response = await self._send(request)
                except _RetryableFailure as failure:
                    raise failure.give_up(self._client.base_url) from failure.cause
                request = operation.send(response)
        except StopIteration as stop:
            result: _T = stop.value
            return result
        finally:
            operation.close()
            for _, task in started.values():  # requests the operation did not wait for
                task.cancel()
            await asyncio.gather(*(task for _, task in started.values()), return_exceptions=True)

    async def _ahead(self, request: _Request, written: asyncio.Event) -> httpx.Response:
        """Send a request asked for ahead, setting `written` once it is on its way (or done)."""

        async def trace(name: str, _info: dict[str, Any]) -> None:
            if _written(name):
                written.set()

        request.trace = trace
        try:
            return await self._send(request)
        finally:
            written.set()

    async def aclose(self) -> None:
        """Close the connection pool (unless the client was passed in)."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncHTTPSessionRepository:
        """Use the repository as an async context manager that closes it on exit."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the repository."""
        await self.aclose()

    async def create_session(self, session: Session, **kwargs: Any) -> Session:
        """Create a session; an identical existing one is returned as stored (retry-safe)."""
        return await self._run(self._op_create_session(session))

    async def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        """Read a session, or None when it does not exist."""
        return await self._run(self._op_read_session(session_id))

    async def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Delete a session with its agents, messages and multi-agent states; raise if missing."""
        await self._run(self._op_delete_session(session_id))

    async def list_sessions(
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
        return await self._run(
            self._op_list_sessions(limit, created_after, created_before, session_type)
        )

    async def create_agent(
        self, session_id: str, session_agent: SessionAgent, **kwargs: Any
    ) -> None:
        """Create an agent in a session (an identical repeat succeeds)."""
        await self._run(self._op_create_agent(session_id, session_agent))

    async def read_agent(
        self, session_id: str, agent_id: str, **kwargs: Any
    ) -> SessionAgent | None:
        """Read an agent, or None when it (or its session) does not exist."""
        return await self._run(self._op_read_agent(session_id, agent_id))

    async def update_agent(
        self, session_id: str, session_agent: SessionAgent, **kwargs: Any
    ) -> None:
        """Replace an agent's state, conversation manager state and internal state."""
        await self._run(self._op_update_agent(session_id, session_agent))

    async def create_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any
    ) -> None:
        """Store a message; a different one under the same id is overwritten with a warning."""
        await self._run(self._op_create_message(session_id, agent_id, session_message))

    async def create_messages(
        self, session_id: str, agent_id: str, session_messages: list[SessionMessage], **kwargs: Any
    ) -> None:
        """Store consecutive messages of one agent in one request (all or nothing)."""
        await self._run(self._op_create_messages(session_id, agent_id, session_messages))

    async def read_message(
        self, session_id: str, agent_id: str, message_id: int, **kwargs: Any
    ) -> SessionMessage | None:
        """Read a message, or None when it does not exist."""
        return await self._run(self._op_read_message(session_id, agent_id, message_id))

    async def update_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any
    ) -> None:
        """Replace a message and its redaction; raise if it does not exist."""
        await self._run(self._op_update_message(session_id, agent_id, session_message))

    async def list_messages(
        self,
        session_id: str,
        agent_id: str,
        limit: int | None = None,
        offset: int = 0,
        **kwargs: Any,
    ) -> list[SessionMessage]:
        """Skip the ``offset`` oldest messages and return ``limit`` of the rest (None: all)."""
        return await self._run(self._op_list_messages(session_id, agent_id, limit, offset))

    async def create_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any
    ) -> None:
        """Store a Graph's or Swarm's ``serialize_state()``."""
        await self._run(self._op_create_multi_agent(session_id, multi_agent))

    async def read_multi_agent(
        self, session_id: str, multi_agent_id: str, **kwargs: Any
    ) -> dict[str, Any] | None:
        """Read a multi-agent state, or None when it does not exist."""
        return await self._run(self._op_read_multi_agent(session_id, multi_agent_id))

    async def update_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any
    ) -> None:
        """Replace a multi-agent state; raise if it does not exist."""
        await self._run(self._op_update_multi_agent(session_id, multi_agent))
