"""Domain errors, the one asyncpg -> HTTP table, and the error envelope.

Every 4xx/5xx leaves the service as
`{"error": {"code", "message", "details"?, "request_id"}}`; the user-facing sentences live here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson


class ServiceError(Exception):
    """An error with its HTTP status and contract code."""

    status = 500
    code = "internal"
    headers: dict[str, str] | None = None  # extra response headers, e.g. Retry-After

    def __init__(
        self,
        message: str,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class PreconditionFailed(ServiceError):
    status, code = 412, "precondition_failed"


class InvalidRequest(ServiceError):
    status, code = 422, "invalid_request"


class InvalidId(ServiceError):
    status, code = 422, "invalid_id"


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class ServiceUnavailable(ServiceError):
    status, code = 503, "service_unavailable"


# --- the sentences -------------------------------------------------------------------------------


def session_missing(session_id: str) -> NotFound:
    return NotFound(f"session {session_id!r} not found")


def agent_missing(session_id: str, agent_id: str) -> NotFound:
    return NotFound(f"agent {agent_id!r} not found in session {session_id!r}")


def message_missing(session_id: str, agent_id: str, message_id: int) -> NotFound:
    return NotFound(
        f"message {message_id} not found for agent {agent_id!r} in session {session_id!r}"
    )


def multi_agent_missing(session_id: str, multi_agent_id: str) -> NotFound:
    return NotFound(f"multi-agent state {multi_agent_id!r} not found in session {session_id!r}")


def already_exists(what: str) -> Conflict:
    return Conflict(f"{what} already exists with different content")


def version_mismatch(what: str, expected: int) -> PreconditionFailed:
    return PreconditionFailed(
        f"{what} has changed: If-Match asked for version {expected}, the stored version differs"
    )


def key_reused(header: str) -> InvalidRequest:
    return InvalidRequest(
        f"{header}: this key was already used for a different request (method, path or body); "
        "use a new key for a new request"
    )


def outcome_unknown(header: str, key: str) -> ServiceUnavailable:
    """A write whose connection was lost and whose outcome the service could not find out."""
    return ServiceUnavailable(
        "the database connection was lost while this write was in flight and its outcome could "
        f"not be confirmed; retry with the same {header} ({key}): it is applied at most once",
        headers={header: key},
    )


# --- asyncpg errors ------------------------------------------------------------------------------


class ConnectionLost(ConnectionError):
    """The connection died under a transaction; whatever asyncpg raised is the cause."""


# Re-running the whole transaction can succeed: the database was briefly busy or unreachable,
# or a migration invalidated the cached statement plans.
TRANSIENT: tuple[type[Exception], ...] = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.InvalidCachedStatementError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.PostgresConnectionError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)

# What the database layer may raise: Postgres errors and the transient ones above.
DATABASE_ERRORS: tuple[type[Exception], ...] = (asyncpg.PostgresError, *TRANSIENT)

# Never retried, and never a 503: the request itself is wrong.
_DATA_ERRORS = (
    asyncpg.CheckViolationError,
    asyncpg.NotNullViolationError,
    asyncpg.DataError,
    asyncpg.UntranslatableCharacterError,
    asyncpg.CharacterNotInRepertoireError,
)


def from_database(exc: BaseException) -> ServiceError:
    """Translate a database error that escaped the retries into a contract error."""
    from service.leases import fence_error  # leases builds on this module

    if (fenced := fence_error(exc)) is not None:
        return fenced
    if isinstance(exc, asyncpg.UniqueViolationError):
        return Conflict("a resource with that id already exists")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return NotFound("the parent session or agent does not exist")
    if isinstance(exc, _DATA_ERRORS):
        return InvalidRequest(f"the database refused the data: {exc.__class__.__name__}")
    if isinstance(exc, asyncpg.QueryCanceledError):
        return ServiceUnavailable("the database did not answer in time; retry shortly")
    if isinstance(exc, TRANSIENT):
        return ServiceUnavailable("the database is unavailable; retry shortly")
    return ServiceError("internal error")


def envelope(error: ServiceError, request_id: str | None) -> bytes:
    """The one error body of the contract."""
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    body["request_id"] = request_id
    return orjson.dumps({"error": body})
