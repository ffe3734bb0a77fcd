"""The errors every session operation raises: ``SessionException`` subclasses carrying the
service's error envelope, never a raw ``httpx`` error."""

from __future__ import annotations

import json
from typing import Any, Final

import httpx
from strands.types.exceptions import SessionException

__all__ = [
    "InvalidSessionValueError",
    "SessionBackendError",
    "SessionBusyError",
    "SessionConflictError",
    "SessionLeaseLostError",
    "SessionNotFoundError",
    "SessionUnavailableError",
    "SessionVersionConflictError",
]


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


class SessionBusyError(SessionBackendError):
    """Another holder has the session's lease (``session_busy``); with ``exclusive=True``, it
    was still held when ``lease_wait`` ran out."""


class SessionLeaseLostError(SessionBackendError):
    """This client's lease on the session expired or was taken over (``lease_lost``): the write
    was refused, and nothing more of the invocation is written."""


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


# Codes of the session lease (409): they name the error whatever the status or caller expected.
_ERRORS_BY_CODE: Final[dict[str, type[SessionBackendError]]] = {
    "session_busy": SessionBusyError,
    "lease_lost": SessionLeaseLostError,
}


def _error_code(response: httpx.Response) -> str | None:
    """The ``code`` of the service's error envelope, if the answer carries one."""
    try:
        payload = json.loads(response.content)
    except ValueError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


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
    by_code = _ERRORS_BY_CODE.get(str(envelope.get("code")))
    return (by_code or cls or _ERRORS_BY_STATUS.get(status, SessionBackendError))(
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
