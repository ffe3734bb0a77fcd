"""Strands session storage over HTTP: a drop-in ``SessionRepository`` for the session service.

Switching an agent from local files to the service is one line::

    from strands_session_client import HTTPSessionManager

    agent = Agent(session_manager=HTTPSessionManager(session_id="s1", base_url="http://localhost:8000"))

Whatever goes wrong, callers see a ``SessionException`` subclass, never a raw ``httpx`` error.
Every module imports only this package (relatively), the standard library, ``httpx``, ``backoff``
and ``strands`` (plus ``opentelemetry`` when it is installed), so the package can also be vendored
as a whole into an agent project.
"""

from .async_repository import AsyncHTTPSessionRepository
from .errors import (
    InvalidSessionValueError,
    SessionBackendError,
    SessionBusyError,
    SessionConflictError,
    SessionLeaseLostError,
    SessionNotFoundError,
    SessionUnavailableError,
    SessionVersionConflictError,
)
from .manager import HTTPSessionManager
from .repository import HTTPSessionRepository
from .storage import HTTPStorage

__all__ = [
    "AsyncHTTPSessionRepository",
    "HTTPSessionManager",
    "HTTPSessionRepository",
    "HTTPStorage",
    "InvalidSessionValueError",
    "SessionBackendError",
    "SessionBusyError",
    "SessionConflictError",
    "SessionLeaseLostError",
    "SessionNotFoundError",
    "SessionUnavailableError",
    "SessionVersionConflictError",
]
