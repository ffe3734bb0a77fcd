"""Is a session backend reachable and ready? One check, and a wait loop built on it.

`check_ready` asks `/health/ready`, then makes one authenticated API call so a wrong or
missing key is caught too, and turns every way this can fail into a `Readiness` whose message
and hint tell the user what to do next.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .project import local_port

MIGRATE_HINT = (
    "run the migrations: `python -m service migrate` (with compose: "
    "`docker compose run --rm migrate`), or start the backend with MIGRATE_ON_START=true."
)


@dataclass(frozen=True)
class Readiness:
    """The outcome of one check: `problem` is `None` when the backend is ready."""

    url: str
    problem: str | None
    message: str
    hint: str | None = None

    @property
    def ok(self) -> bool:
        """True when the backend answered ready and accepted the credentials."""
        return self.problem is None


def start_hint(url: str) -> str:
    """What to do when nothing answers at `url`."""
    port = local_port(url)
    if port is None:
        return (
            f"is the backend at {url} running and reachable from here? Check the URL "
            "(SESSION_BACKEND_URL, or --url)."
        )
    return (
        f"nothing listens on port {port}: start the backend there with `strands-cli run --local` "
        "(or `strands-cli run`) in the project whose .env names this URL, or check the URL."
    )


def normalise_url(url: str) -> str:
    """`url` without a trailing slash; raises ValueError unless it is an http(s) URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url.strip().rstrip("/")


def _error_text(response: httpx.Response) -> str:
    """The server's error message (from the error envelope), or the start of the body."""
    try:
        error = response.json().get("error", {})
        text = str(error.get("message", ""))
        if error.get("details"):
            text += " " + json.dumps(error["details"], ensure_ascii=False)
        return text.strip() or response.text[:200]
    except (ValueError, AttributeError):
        return response.text[:200].strip()


def _from_response(url: str, response: httpx.Response, *, api: bool) -> Readiness:
    status = response.status_code
    where = "the API" if api else "/health/ready"
    if status == 401:
        return Readiness(
            url,
            "unauthorized",
            f"{where} answered 401 Unauthorized: the API key is missing or wrong.",
            "pass the right key with --api-key or SESSION_BACKEND_API_KEY (one of the "
            "backend's API_KEYS).",
        )
    text = _error_text(response)
    if status == 503:
        if "migrat" in text.lower() or "schema" in text.lower():
            return Readiness(
                url, "not_migrated", f"the database schema is not up to date: {text}", MIGRATE_HINT
            )
        return Readiness(
            url,
            "unavailable",
            f"the backend is up but not ready (503): {text}",
            "check that its database is running and reachable (DATABASE_URL); "
            "the backend's log says more.",
        )
    if status == 404 and not api:
        return Readiness(
            url,
            "not_a_backend",
            f"{url} answered 404 for /health/ready: it does not look like a session backend.",
            "check the URL (e.g. http://127.0.0.1:8000, without /api/v1).",
        )
    return Readiness(url, "unexpected", f"{where} answered {status}: {text}")


def check_ready(url: str, api_key: str | None = None, *, timeout: float = 5.0) -> Readiness:
    """Check once that the backend at `url` is ready and accepts `api_key`."""
    try:
        base = normalise_url(url)
    except ValueError as exc:
        return Readiness(url, "invalid_url", str(exc), "use e.g. http://127.0.0.1:8000")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=timeout) as client:
            response = client.get("/health/ready")
            if response.status_code != 200:
                return _from_response(base, response, api=False)
            response = client.get("/api/v1/sessions", params={"limit": 1})
            if response.status_code != 200:
                return _from_response(base, response, api=True)
    except httpx.ConnectError as exc:
        host = urlsplit(base).netloc
        if "refused" in str(exc).lower():
            return Readiness(base, "refused", f"connection refused by {host}.", start_hint(base))
        return Readiness(
            base, "unreachable", f"could not connect to {host}: {exc}", start_hint(base)
        )
    except httpx.TimeoutException:
        return Readiness(
            base,
            "timeout",
            f"no answer from {base} within {timeout:g} s.",
            "check the host and port, and that nothing (proxy, firewall) holds the connection; "
            "a busy backend may need a longer --timeout.",
        )
    except httpx.HTTPError as exc:
        return Readiness(base, "unexpected", f"request to {base} failed: {exc}")
    return Readiness(base, None, f"the session backend at {base} is ready.")


def wait_ready(
    url: str,
    api_key: str | None = None,
    *,
    deadline: float = 60.0,
    interval: float = 0.5,
    alive: Callable[[], bool] | None = None,
) -> Readiness:
    """Check until ready, `deadline` seconds pass, or `alive()` says the server died."""
    end = time.monotonic() + deadline
    while True:
        result = check_ready(url, api_key, timeout=min(5.0, max(deadline, 0.1)))
        # A wrong key will not fix itself; anything else may be the server still starting.
        if result.ok or result.problem in ("unauthorized", "invalid_url"):
            return result
        if alive is not None and not alive():
            return result
        if time.monotonic() >= end:
            return result
        time.sleep(interval)
