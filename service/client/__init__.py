"""The Strands session client: ``HTTPSessionManager`` and the repositories behind it."""

from service.client.repository import (
    AsyncHTTPSessionRepository,
    HTTPSessionManager,
    HTTPSessionRepository,
    InvalidSessionValueError,
    SessionBackendError,
    SessionConflictError,
    SessionNotFoundError,
    SessionUnavailableError,
    SessionVersionConflictError,
)

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
