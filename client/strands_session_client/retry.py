"""The retry policy both transports share, and the ``httpx`` clients they are built on.

Retries use ``backoff`` with full jitter, honour ``Retry-After``, and stop at a deadline: a call
gives up ``max_retry_time`` seconds after its first attempt started, and each attempt's timeouts
are cut to what remains, so a server that accepts connections but never answers fails as fast as
one that refuses them. Every retry is logged at WARNING with its reason and its wait.

Building an ``httpx.Client`` costs tens of milliseconds (its TLS context loads the CA bundle, even
for ``http://``). Repositories with the same settings therefore share one client, and so one
keep-alive pool, per process; async clients, which belong to one event loop, share the TLS context.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Generator
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx

from .codec import API_PREFIX, _Request
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
    # Below the 15 s within which an unreachable or unresponsive service must be reported.
    "max_retry_time": 12.0,
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

    def reason(self) -> str:
        """What went wrong, in a few words: ``HTTP 503`` or ``ConnectError: ...``."""
        if self.response is not None:
            return f"HTTP {self.response.status_code}"
        return f"{type(self.cause).__name__}: {self.cause}".rstrip(": ")

    def give_up(self, base_url: httpx.URL) -> SessionBackendError:
        """The ``SessionUnavailableError`` callers see once retries are exhausted: it names the
        URL, the number of attempts and the last cause."""
        request = self.request
        root = str(base_url).rstrip("/")
        attempts = f"after {request.attempts} attempt(s)"
        if self.response is not None:
            status = self.response.status_code
            prefix = f"gave up {attempts} at {root}, last cause HTTP {status}: "
            return _error_from_response(self.response, SessionUnavailableError, prefix)
        url = f"{root}{request.path}"
        timed_out = isinstance(self.cause, httpx.TimeoutException)
        return SessionUnavailableError(
            f"session service {'did not answer' if timed_out else 'unreachable'}:"
            f" {request.method} {url} gave up {attempts}; last cause {self.reason()}",
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
    logger.warning(
        "session service %s %s failed (%s); retry %d in %.2fs",
        failure.request.method,
        failure.request.path,
        failure.reason(),
        details["tries"],
        details["wait"],
    )


def _attempt_timeout(
    request: _Request, max_retry_time: float | None, timeout: httpx.Timeout
) -> httpx.Timeout | None:
    """The timeouts of the next attempt, cut to what remains of the call's deadline.

    Raises the previous failure again when nothing remains (backoff then gives up), so that no
    attempt starts after the deadline. None: no deadline, the client's own timeouts apply.
    """
    if max_retry_time is None:
        return None
    now = time.monotonic()
    if request.deadline is None:
        request.deadline = now + max_retry_time
    remaining = request.deadline - now
    if remaining <= 0.01 and request.last_failure is not None:
        raise request.last_failure
    remaining = max(remaining, 0.01)

    def cut(value: float | None) -> float:
        return remaining if value is None else min(value, remaining)

    return httpx.Timeout(
        connect=cut(timeout.connect),
        read=cut(timeout.read),
        write=cut(timeout.write),
        pool=cut(timeout.pool),
    )


def _raise_if_retryable(request: _Request, response: httpx.Response) -> httpx.Response:
    if response.status_code in _RETRY_STATUSES:
        request.last_failure = _RetryableFailure(request, response=response)
        raise request.last_failure
    return response


def _transport_failure(request: _Request, exc: Exception) -> _RetryableFailure:
    request.last_failure = _RetryableFailure(request, cause=exc)
    return request.last_failure


def _check_client_options(client: object, base_url: str | None, api_key: str | None) -> None:
    if client is not None and (base_url or api_key):
        raise InvalidSessionValueError(
            "a client passed in brings its own base_url and headers; "
            "set them on it rather than passing base_url or api_key too"
        )


def _root_url(base_url: str | None) -> str:
    """The service's root URL; a URL ending in the API prefix (``/api/v1``) is taken back to it."""
    url = (base_url or os.environ.get(URL_ENV) or "").strip()
    if not url:
        raise InvalidSessionValueError(f"base_url is required (or set {URL_ENV})")
    if not url.lower().startswith(("http://", "https://")):
        raise InvalidSessionValueError(
            f"base_url must start with http:// or https://, got {url!r}"
            " (for example http://127.0.0.1:8000)"
        )
    root = url.rstrip("/")
    if root.endswith(API_PREFIX):
        root = root.removesuffix(API_PREFIX)
    return root


def _client_options(
    base_url: str | None,
    api_key: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_connections: int,
) -> dict[str, Any]:
    """Settings shared by the sync and async ``httpx`` clients."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    headers = {"Accept": "application/json", "User-Agent": "strands-session-client/1"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return {
        "base_url": _root_url(base_url),
        "headers": headers,
        "timeout": httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        ),
        "limits": httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        "verify": _tls_context(),
    }


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for the process (building one loads the CA bundle)."""
    return httpx.create_ssl_context()


_shared_lock = threading.Lock()
_shared_clients: dict[tuple[Any, ...], httpx.Client] = {}


def _shared_client(options: dict[str, Any]) -> httpx.Client:
    """The process's ``httpx.Client`` for these settings, built on first use.

    ``httpx.Client`` is thread-safe, and sharing it keeps its connections alive from one
    repository (or session manager) to the next: building one per request costs nothing.
    """
    timeout, limits = options["timeout"], options["limits"]
    key = (
        options["base_url"],
        tuple(sorted(options["headers"].items())),
        (timeout.connect, timeout.read, timeout.write, timeout.pool),
        limits.max_connections,
    )
    with _shared_lock:
        client = _shared_clients.get(key)
        if client is None or client.is_closed:
            client = _shared_clients[key] = httpx.Client(**options)
        return client
