"""The retry policy both transports share (``backoff`` with full jitter and ``Retry-After``),
and the ``httpx`` client settings they are built with."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Generator
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx

from .codec import _Request
from .errors import (
    InvalidSessionValueError,
    SessionBackendError,
    SessionUnavailableError,
    _error_from_response,
)

logger = logging.getLogger(__name__)

URL_ENV: Final = "SESSION_BACKEND_URL"
API_KEY_ENV: Final = "SESSION_BACKEND_API_KEY"

_RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
_RETRY_EXCEPTIONS: Final = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)

_DEFAULTS: Final[dict[str, Any]] = {
    "connect_timeout": 5.0,
    "read_timeout": 30.0,
    "max_retry_time": 60.0,
    "max_tries": None,
    "initial_backoff": 0.1,
    "max_backoff": 8.0,
    "max_retry_after": 15.0,
}


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
