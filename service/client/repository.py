"""Strands session storage over HTTP: a drop-in ``SessionRepository`` for the session service.

Switching an agent from local files to the service is one line::

    from service.client import HTTPSessionManager

    agent = Agent(session_manager=HTTPSessionManager(session_id="s1", base_url="http://localhost:8000"))

This module imports only the standard library, ``httpx``, ``backoff`` and ``strands`` (plus
``opentelemetry`` when it is installed), so it can be copied as a single file into an agent
project.

Every repository operation is written once, as a generator that yields ``_Request`` objects and
is sent back the ``httpx.Response`` for each (it does no I/O itself). ``HTTPSessionRepository``
drives those generators over one pooled ``httpx.Client``, ``AsyncHTTPSessionRepository`` over an
``httpx.AsyncClient``; both wrap each request in the same ``backoff`` retry policy. Whatever goes
wrong, callers see a ``SessionException`` subclass, never a raw ``httpx`` error.
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
import math
import os
import random
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import quote

import backoff
import httpx
from strands.session.repository_session_manager import RepositorySessionManager
from strands.session.session_repository import SessionRepository
from strands.types.exceptions import SessionException
from strands.types.session import (
    Session,
    SessionAgent,
    SessionMessage,
    SessionType,
    decode_bytes_values,
)

try:
    from opentelemetry import propagate as _otel_propagate
    from opentelemetry import trace as _otel_trace
except ImportError:  # tracing is optional
    _otel_propagate = None  # type: ignore[assignment]
    _otel_trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

__all__ = [
    "AsyncHTTPSessionRepository",
    "HTTPSessionManager",
    "HTTPSessionRepository",
    "InvalidSessionValueError",
    "SessionBackendError",
    "SessionConflictError",
    "SessionNotFoundError",
    "SessionUnavailableError",
    "SessionVersionConflictError",
]

logger = logging.getLogger(__name__)

API_PREFIX: Final = "/api/v1"
MAX_PAGE_SIZE: Final = 1000
URL_ENV: Final = "SESSION_BACKEND_URL"
API_KEY_ENV: Final = "SESSION_BACKEND_API_KEY"

_RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
_RETRY_EXCEPTIONS: Final = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)
_AGENT_FIELDS: Final = ("state", "conversation_manager_state", "_internal_state")

_T = TypeVar("_T")


# --- errors -----------------------------------------------------------------------------------


class SessionBackendError(SessionException):
    """A session operation failed.

    Carries the service's error envelope when there was one: ``status`` (HTTP status, or None when
    no answer came), ``code`` (e.g. ``not_found``), ``message``, ``details`` and ``request_id``.
    ``str()`` adds what the client was doing (``context``) and those facts.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        details: list[Any] | None = None,
        context: str = "",
    ) -> None:
        """Build the error; ``message`` is the human sentence, the rest the envelope's fields."""
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.details = details or []
        self.context = context

    def __str__(self) -> str:
        """Return context and message, followed by status, code and request id when known."""
        facts = [f"HTTP {self.status}" if self.status is not None else "", self.code or ""]
        if self.request_id:
            facts.append(f"request_id={self.request_id}")
        known = ", ".join(fact for fact in facts if fact)
        text = f"{self.context}{self.message}"
        return f"{text} ({known})" if known else text


class SessionNotFoundError(SessionBackendError):
    """The session, agent, message or multi-agent state to update, delete or list is missing."""


class SessionConflictError(SessionBackendError):
    """A create met a different resource already stored under the same id."""


class SessionVersionConflictError(SessionConflictError):
    """Optimistic mode: another process changed the resource since this one last saw it."""


class SessionUnavailableError(SessionBackendError):
    """The service was unreachable, timed out, or kept answering 503/429 until retries ran out."""


class InvalidSessionValueError(SessionBackendError, ValueError):
    """A value was refused before sending: NaN/Infinity, a non-JSON type, a bad id or argument."""


_ERRORS_BY_STATUS: Final[dict[int, type[SessionBackendError]]] = {
    404: SessionNotFoundError,
    409: SessionConflictError,
    412: SessionVersionConflictError,
    429: SessionUnavailableError,
    502: SessionUnavailableError,
    503: SessionUnavailableError,
    504: SessionUnavailableError,
}


def _error_from_response(
    response: httpx.Response, cls: type[SessionBackendError] | None = None, prefix: str = ""
) -> SessionBackendError:
    """Turn a non-success answer into an error carrying the service's envelope."""
    envelope: dict[str, Any] = {}
    try:
        payload = json.loads(response.content)
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            envelope = payload["error"]
    except ValueError:
        pass
    request = response.request
    message = envelope.get("message") or (
        f"answered HTTP {response.status_code} {response.reason_phrase}: {response.text[:200]!r}"
    )
    status = response.status_code
    return (cls or _ERRORS_BY_STATUS.get(status, SessionBackendError))(
        message,
        context=f"{prefix}{request.method} {request.url.path}: ",
        status=status,
        code=envelope.get("code"),
        request_id=envelope.get("request_id") or response.headers.get("x-request-id"),
        details=envelope.get("details") if isinstance(envelope.get("details"), list) else None,
    )


def _expect(response: httpx.Response, *statuses: int) -> None:
    if response.status_code not in statuses:
        raise _error_from_response(response)


# --- JSON in and out --------------------------------------------------------------------------


def _encode_stray(value: object) -> object:
    """Encode bytes the way Strands does; refuse every other non-JSON type."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"__bytes_encoded__": True, "data": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"a {type(value).__name__} is not JSON serializable")


_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_encode_stray
)
_ASCII_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=_encode_stray
)


def _non_finite_path(value: Any, path: str = "$") -> str | None:
    """Where the first NaN or Infinity sits in ``value``, as a ``$.a[0]`` path."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        items: Any = ((f"{path}.{key}", item) for key, item in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for item_path, item in items:
        if (found := _non_finite_path(item, item_path)) is not None:
            return found
    return None


def _encode(payload: Any) -> bytes:
    """Serialise a request body, refusing NaN/Infinity before anything is sent."""
    try:
        try:
            return _ENCODER.encode(payload).encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate has no UTF-8 form; as a \u escape it is still valid JSON.
            return _ASCII_ENCODER.encode(payload).encode("ascii")
    except ValueError as exc:
        where = _non_finite_path(payload)
        reason = (
            f"the value at {where} is NaN or Infinity, which JSON cannot carry; "
            "store None or a string instead"
            if where
            else str(exc)
        )
        raise InvalidSessionValueError(
            f"refusing to send the session data: {reason}", code="invalid_value"
        ) from exc
    except TypeError as exc:
        raise InvalidSessionValueError(
            f"refusing to send the session data: {exc}", code="invalid_value"
        ) from exc


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise _error_from_response(response, SessionBackendError, "non-JSON answer: ") from exc


def _copy_timestamps(target: SessionAgent | SessionMessage, response: httpx.Response) -> None:
    """Adopt the server-assigned timestamps, so the caller's object matches what is stored."""
    stored = _json(response)
    for name in ("created_at", "updated_at"):
        if isinstance(stored.get(name), str):
            setattr(target, name, stored[name])


_Built = TypeVar("_Built", SessionAgent, SessionMessage)


_PARAMETERS: Final[dict[type, frozenset[str]]] = {
    cls: frozenset(inspect.signature(cls).parameters) for cls in (SessionAgent, SessionMessage)
}


def _from_dict(cls: type[_Built], data: dict[str, Any], *, has_bytes: bool = True) -> _Built:
    """Strands' ``from_dict`` (known keys only, bytes decoded), with the signature looked up once.

    ``from_dict`` calls ``inspect.signature`` for every key of every object: 0.3 ms a message,
    three seconds of CPU in a 10,000-message restore. ``has_bytes=False`` (the body holds no
    encoded bytes at all) skips walking every value for them.
    """
    known = _PARAMETERS[cls]
    fields = {k: v for k, v in data.items() if k in known}
    return cls(**(decode_bytes_values(fields) if has_bytes else fields))


def _session_from(response: httpx.Response) -> Session:
    data = _json(response)
    if data.get("session_type") in SessionType._value2member_map_:
        data["session_type"] = SessionType(data["session_type"])
    return Session.from_dict(data)


# --- requests ---------------------------------------------------------------------------------


def _path(*segments: str | int) -> str:
    """Build an API path, percent-encoding each id (and dot-only ids, which URLs would fold)."""
    parts = []
    for segment in segments:
        text = quote(str(segment), safe="")
        parts.append(text.replace(".", "%2E") if text in {".", ".."} else text)
    return API_PREFIX + "/" + "/".join(parts)


def _check_id(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidSessionValueError(
            f"{kind} must be a non-empty string, got {value!r}", code="invalid_id"
        )
    return value


@dataclass(slots=True)
class _Request:
    """One HTTP request an operation asks its driver to send; ``attempts`` counts retries."""

    method: str
    path: str
    body: bytes | None = None
    params: dict[str, str | int] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 0


def _request(
    method: str,
    path: str,
    payload: Any = None,
    *,
    params: dict[str, str | int] | None = None,
    if_match: str | None = None,
) -> _Request:
    # One id for all attempts, so the server's logs tie retries of one call together.
    headers = {"X-Request-ID": uuid.uuid4().hex}
    body = None
    if payload is not None:
        body = _encode(payload)
        headers["Content-Type"] = "application/json"
    if if_match is not None:
        headers["If-Match"] = if_match
    if _otel_propagate is not None and _otel_trace.get_current_span().get_span_context().is_valid:
        _otel_propagate.inject(headers)
    return _Request(method, path, body, params, headers)


_Operation = Generator[_Request, httpx.Response, _T]


# --- retries ----------------------------------------------------------------------------------


class _RetryableFailure(Exception):
    """A transport failure or a 429/502/503/504 answer: worth another attempt."""

    def __init__(
        self,
        request: _Request,
        response: httpx.Response | None = None,
        cause: Exception | None = None,
    ) -> None:
        super().__init__(request.method, request.path)
        self.request = request
        self.response = response
        self.cause = cause

    def retry_after(self) -> float | None:
        """The server's ``Retry-After`` in seconds, if it sent one."""
        value = self.response.headers.get("retry-after") if self.response is not None else None
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None

    def give_up(self, base_url: httpx.URL) -> SessionBackendError:
        """The ``SessionUnavailableError`` callers see once retries are exhausted."""
        attempts = f"after {self.request.attempts} attempt(s)"
        if self.response is not None:
            prefix = f"gave up {attempts}: "
            return _error_from_response(self.response, SessionUnavailableError, prefix)
        cause = self.cause
        timed_out = isinstance(cause, httpx.TimeoutException)
        return SessionUnavailableError(
            f"session service at {base_url} {'did not answer' if timed_out else 'unreachable'}"
            f" {attempts}: {self.request.method} {self.request.path}:"
            f" {type(cause).__name__}: {cause}",
            code="timeout" if timed_out else "unreachable",
        )


def _retry_waits(
    *, initial: float, cap: float, retry_after_cap: float
) -> Generator[float, Any, None]:
    """Exponential waits with full jitter, stretched to ``Retry-After`` (capped) when given."""
    failure = yield 0.0  # backoff primes the generator (value unused), then sends each failure
    attempt = 0
    while True:
        delay = random.uniform(0.0, min(cap, initial * 2 ** min(attempt, 32)))
        retry_after = failure.retry_after() if isinstance(failure, _RetryableFailure) else None
        if retry_after is not None:
            delay = max(delay, min(retry_after, retry_after_cap))
        attempt += 1
        failure = yield delay


def _log_retry(details: Any) -> None:
    failure = details["exception"]
    reason = (
        f"HTTP {failure.response.status_code}"
        if failure.response is not None
        else type(failure.cause).__name__
    )
    logger.info(
        "session service %s %s failed (%s); retry %d in %.2fs",
        failure.request.method,
        failure.request.path,
        reason,
        details["tries"],
        details["wait"],
    )


def _raise_if_retryable(request: _Request, response: httpx.Response) -> httpx.Response:
    if response.status_code in _RETRY_STATUSES:
        raise _RetryableFailure(request, response=response)
    return response


def _check_client_options(client: object, base_url: str | None, api_key: str | None) -> None:
    if client is not None and (base_url or api_key):
        raise InvalidSessionValueError(
            "a client passed in brings its own base_url and headers; "
            "set them on it rather than passing base_url or api_key too"
        )


def _client_options(
    base_url: str | None,
    api_key: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_connections: int,
) -> dict[str, Any]:
    """Settings shared by the sync and async ``httpx`` clients."""
    url = base_url or os.environ.get(URL_ENV)
    if not url:
        raise InvalidSessionValueError(f"base_url is required (or set {URL_ENV})")
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    headers = {"Accept": "application/json", "User-Agent": "strands-session-client/1"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return {
        "base_url": url,
        "headers": headers,
        "timeout": httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        ),
        "limits": httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    }


# --- the operations, written once -------------------------------------------------------------


class _SessionOperations:
    """Every repository operation as a sans-I/O generator, plus the shared retry policy."""

    def __init__(
        self,
        *,
        optimistic: bool,
        max_retry_time: float | None,
        max_tries: int | None,
        initial_backoff: float,
        max_backoff: float,
        max_retry_after: float,
    ) -> None:
        self.optimistic = optimistic
        self.max_retry_time = max_retry_time
        self.max_tries = max_tries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        # ETag of each agent / multi-agent state as last read or written (optimistic mode).
        self._versions: dict[tuple[str, str, str], str] = {}
        # Offset of a restore that listed nothing: message ids below it belong to trimmed history.
        self._trimmed_below: dict[tuple[str, str], int] = {}

    def _with_retries(self, attempt: Callable[[_Request], Any]) -> Any:
        return backoff.on_exception(
            # backoff sends each failure into the wait generator; its stubs declare a send type
            # of None, which is why the generator's type does not match them.
            _retry_waits,  # type: ignore[arg-type]
            _RetryableFailure,
            max_time=self.max_retry_time,
            max_tries=self.max_tries,
            jitter=None,
            on_backoff=_log_retry,
            logger=None,
            initial=self.initial_backoff,
            cap=self.max_backoff,
            retry_after_cap=self.max_retry_after,
        )(attempt)

    def _remember(self, key: tuple[str, str, str], response: httpx.Response) -> None:
        if self.optimistic and (etag := response.headers.get("etag")):
            self._versions[key] = etag

    def _put(
        self,
        key: tuple[str, str, str],
        path: str,
        payload: dict[str, Any],
        fields: tuple[str, ...],
        what: str,
    ) -> _Operation[httpx.Response]:
        """PUT with ``If-Match`` in optimistic mode; 404 and 412 raise.

        ``fields`` are the ones the PUT replaces, compared to tell our own write from another's.
        """
        if_match = self._versions.get(key) if self.optimistic else None
        request = _request("PUT", path, payload, if_match=if_match)
        response = yield request
        if response.status_code == 412 and request.attempts > 1:
            # An earlier attempt may have been applied before its answer was lost: if the stored
            # resource is what this write sent, the 412 is our own write, not another process's.
            current = yield _request("GET", path)
            sent = json.loads(request.body or b"{}")
            if current.status_code == 200:
                stored = _json(current)
                if all(stored.get(name) == sent.get(name) for name in fields):
                    response = current
        if response.status_code == 412:
            raise _error_from_response(
                response,
                SessionVersionConflictError,
                f"{what} was changed by another process since this one last read or wrote it; "
                "read it again before writing: ",
            )
        if response.status_code == 404:
            raise _error_from_response(response, SessionNotFoundError, f"{what} does not exist: ")
        _expect(response, 200)
        self._remember(key, response)
        return response

    def _op_create_session(self, session: Session) -> _Operation[Session]:
        _check_id("session_id", session.session_id)
        response = yield _request("POST", _path("sessions"), session.to_dict())
        _expect(response, 200, 201)
        return _session_from(response)

    def _op_read_session(self, session_id: str) -> _Operation[Session | None]:
        response = yield _request("GET", _path("sessions", _check_id("session_id", session_id)))
        if response.status_code == 404:
            return None
        _expect(response, 200)
        return _session_from(response)

    def _op_delete_session(self, session_id: str) -> _Operation[None]:
        response = yield _request("DELETE", _path("sessions", _check_id("session_id", session_id)))
        _expect(response, 204)

    def _op_create_agent(self, session_id: str, session_agent: SessionAgent) -> _Operation[None]:
        agent_id = _check_id("agent_id", session_agent.agent_id)
        path = _path("sessions", _check_id("session_id", session_id), "agents")
        response = yield _request("POST", path, session_agent.to_dict())
        _expect(response, 200, 201)
        self._remember(("agent", session_id, agent_id), response)
        _copy_timestamps(session_agent, response)

    def _op_read_agent(self, session_id: str, agent_id: str) -> _Operation[SessionAgent | None]:
        session_id, agent_id = _check_id("session_id", session_id), _check_id("agent_id", agent_id)
        response = yield _request("GET", _path("sessions", session_id, "agents", agent_id))
        if response.status_code == 404:
            return None
        _expect(response, 200)
        self._remember(("agent", session_id, agent_id), response)
        return _from_dict(SessionAgent, _json(response))

    def _op_update_agent(self, session_id: str, session_agent: SessionAgent) -> _Operation[None]:
        agent_id = _check_id("agent_id", session_agent.agent_id)
        path = _path("sessions", _check_id("session_id", session_id), "agents", agent_id)
        what = f"agent {agent_id!r} in session {session_id!r}"
        key = ("agent", session_id, agent_id)
        response = yield from self._put(key, path, session_agent.to_dict(), _AGENT_FIELDS, what)
        _copy_timestamps(session_agent, response)

    def _messages_path(self, session_id: str, agent_id: str, *rest: str | int) -> str:
        return _path(
            "sessions",
            _check_id("session_id", session_id),
            "agents",
            _check_id("agent_id", agent_id),
            "messages",
            *rest,
        )

    def _op_create_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage
    ) -> _Operation[None]:
        message_id = _message_id(session_message.message_id)
        payload = session_message.to_dict()
        response = yield _request("POST", self._messages_path(session_id, agent_id), payload)
        if response.status_code == 409:
            trimmed_below = self._trimmed_below.get((session_id, agent_id), 0)
            if self.optimistic and message_id >= trimmed_below:
                raise _error_from_response(
                    response,
                    SessionConflictError,
                    f"message {message_id} of agent {agent_id!r} in session {session_id!r} was "
                    "already written by another process: ",
                )
            # The full-trim case: restore listed nothing and Strands numbers from 0 again over
            # stored rows. FileSessionManager silently overwrites; do the same, but visibly.
            logger.warning(
                "session_id=<%s> | agent_id=<%s> | message_id=<%d> | a different message is "
                "already stored under this id (a conversation manager trimmed the whole history?);"
                " overwriting it, as FileSessionManager does",
                session_id,
                agent_id,
                message_id,
            )
            path = self._messages_path(session_id, agent_id, message_id)
            response = yield _request("PUT", path, payload)
            _expect(response, 200)
        else:
            _expect(response, 200, 201)
        _copy_timestamps(session_message, response)

    def _op_read_message(
        self, session_id: str, agent_id: str, message_id: int
    ) -> _Operation[SessionMessage | None]:
        path = self._messages_path(session_id, agent_id, _message_id(message_id))
        response = yield _request("GET", path)
        if response.status_code == 404:
            return None
        _expect(response, 200)
        return _from_dict(SessionMessage, _json(response))

    def _op_update_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage
    ) -> _Operation[None]:
        message_id = _message_id(session_message.message_id)
        path = self._messages_path(session_id, agent_id, message_id)
        response = yield _request("PUT", path, session_message.to_dict())
        if response.status_code == 404:
            what = f"message {message_id} of agent {agent_id!r} in session {session_id!r}"
            raise _error_from_response(response, SessionNotFoundError, f"{what} does not exist: ")
        _expect(response, 200)
        _copy_timestamps(session_message, response)

    def _op_list_messages(
        self, session_id: str, agent_id: str, limit: int | None, offset: int
    ) -> _Operation[list[SessionMessage]]:
        if not isinstance(offset, int) or offset < 0:
            raise InvalidSessionValueError(f"offset must be an int >= 0, got {offset!r}")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidSessionValueError(f"limit must be None or an int >= 0, got {limit!r}")
        path = self._messages_path(session_id, agent_id)
        messages: list[SessionMessage] = []
        if limit == 0:
            return messages
        # The offset applies to the first page only: a cursor already marks a position past it.
        params: dict[str, str | int] = {"order": "asc", "offset": offset}
        while True:
            wanted = MAX_PAGE_SIZE if limit is None else min(MAX_PAGE_SIZE, limit - len(messages))
            response = yield _request("GET", path, params={**params, "limit": wanted})
            _expect(response, 200)
            page = _json(response)
            has_bytes = b"__bytes_encoded__" in response.content
            messages.extend(
                _from_dict(SessionMessage, item, has_bytes=has_bytes) for item in page["items"]
            )
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and len(messages) >= limit):
                break
            params = {"order": "asc", "cursor": cursor}
        if not messages and offset > 0:
            self._trimmed_below[(session_id, agent_id)] = offset
        else:
            self._trimmed_below.pop((session_id, agent_id), None)
        return messages

    def _multi_agent_path(self, session_id: str, *rest: str) -> str:
        return _path("sessions", _check_id("session_id", session_id), "multi-agents", *rest)

    def _op_create_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase
    ) -> _Operation[None]:
        multi_agent_id = _check_id("multi_agent_id", multi_agent.id)
        payload = {"multi_agent_id": multi_agent_id, "state": multi_agent.serialize_state()}
        response = yield _request("POST", self._multi_agent_path(session_id), payload)
        _expect(response, 200, 201)
        self._remember(("multi_agent", session_id, multi_agent_id), response)

    def _op_read_multi_agent(
        self, session_id: str, multi_agent_id: str
    ) -> _Operation[dict[str, Any] | None]:
        path = self._multi_agent_path(session_id, _check_id("multi_agent_id", multi_agent_id))
        response = yield _request("GET", path)
        if response.status_code == 404:
            return None
        _expect(response, 200)
        self._remember(("multi_agent", session_id, multi_agent_id), response)
        state: dict[str, Any] = _json(response)["state"]
        return state

    def _op_update_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase
    ) -> _Operation[None]:
        multi_agent_id = _check_id("multi_agent_id", multi_agent.id)
        payload = {"multi_agent_id": multi_agent_id, "state": multi_agent.serialize_state()}
        what = f"multi-agent state {multi_agent_id!r} in session {session_id!r}"
        path = self._multi_agent_path(session_id, multi_agent_id)
        key = ("multi_agent", session_id, multi_agent_id)
        yield from self._put(key, path, payload, ("state",), what)


def _message_id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidSessionValueError(f"message_id must be an int >= 0, got {value!r}")
    return value


# --- the drivers ------------------------------------------------------------------------------

_DEFAULTS: Final[dict[str, Any]] = {
    "connect_timeout": 5.0,
    "read_timeout": 30.0,
    "max_retry_time": 60.0,
    "max_tries": None,
    "initial_backoff": 0.1,
    "max_backoff": 8.0,
    "max_retry_after": 15.0,
}


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
            response = await self._client.request(
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

    async def _run(self, operation: _Operation[_T]) -> _T:
        try:
            request = next(operation)
            while True:
                try:
                    response = await self._send(request)
                except _RetryableFailure as failure:
                    raise failure.give_up(self._client.base_url) from failure.cause
                request = operation.send(response)
        except StopIteration as stop:
            result: _T = stop.value
            return result
        finally:
            operation.close()

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
