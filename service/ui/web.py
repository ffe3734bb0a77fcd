"""HTML plumbing of the session browser: templates, security headers, the key, errors as pages.

Every page goes out with a strict Content-Security-Policy (no inline script or style, script
and style only from this service, images also as `data:` URLs), is never cached, and is
rendered by Jinja2 with autoescaping on, so stored text always shows as text. Errors under
/ui, bad ids and bad queries included, answer as an HTML page with the right status rather
than the API's JSON envelope.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from service.errors import ServiceError
from service.models import check_id

log = logging.getLogger("service.ui")
COOKIE = "ssb_ui"
COOKIE_MAX_AGE = 12 * 3600
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_TITLES = {
    400: "Bad request",
    401: "Key needed",
    403: "Forbidden",
    404: "Not found",
    503: "Try again shortly",
}


def _when(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def _stamp(value: datetime | None) -> Markup:
    """A time in small print, exact to the microsecond on hover (a filter: cheaper than a
    macro on pages that show hundreds)."""
    if value is None:
        return Markup("never")
    iso = _iso(value)  # digits, '-', ':', '.', '+' and 'T' only: nothing to escape
    return Markup(f'<time datetime="{iso}" title="{iso}">{_when(value)}</time>')


TEMPLATES = Environment(
    loader=PackageLoader("service.ui", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters["u"] = lambda value: quote(str(value), safe="")
TEMPLATES.filters["when"] = _when
TEMPLATES.filters["iso"] = _iso
TEMPLATES.filters["stamp"] = _stamp
TEMPLATES.globals["query"] = lambda **params: urlencode(
    {k: v for k, v in params.items() if v not in (None, "")}
)


class LoginRequired(Exception):
    """Raised by `authorized` when API keys are configured and the request holds none."""


class PageError(ServiceError):
    """A page-level error with an HTTP status of its own (400 for a bad query, say)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def keys(request: Request) -> list[bytes]:
    return [k.get_secret_value().encode() for k in request.app.state.settings.api_keys]


def token(key: bytes) -> str:
    """What the cookie holds: derived from the key, so it opens the pages but not the API."""
    return hmac.new(key, b"strands-session-backend/ui", hashlib.sha256).hexdigest()


def valid_key(request: Request, presented: str) -> bool:
    # Compare with every key, not stopping at a match, so timing says nothing.
    matches = [hmac.compare_digest(presented.encode(), key) for key in keys(request)]
    return any(matches)


def logged_in(request: Request) -> bool:
    """True when no keys are configured, or the cookie (or a Bearer header) holds a valid one."""
    configured = keys(request)
    if not configured:
        return True
    cookie = request.cookies.get(COOKIE, "")
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    matches = [hmac.compare_digest(cookie.encode(), token(k).encode()) for k in configured]
    if scheme.lower() == "bearer" and bearer:
        matches.append(valid_key(request, bearer.strip()))
    return any(matches)


async def authorized(request: Request) -> None:
    """Dependency of every page but the login: no valid key, no page."""
    if not logged_in(request):
        raise LoginRequired


def valid_id(value: str) -> str:
    """A session or agent id from a path; one that cannot exist is simply not found."""
    try:
        return check_id(value)
    except ValueError:
        raise PageError(404, "There is no such id: ids have 1 to 255 characters, no '/'.") from None


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A rendered page with the security headers."""
    started = time.perf_counter()
    html = TEMPLATES.get_template(template).render(
        path=request.url.path, with_logout=bool(keys(request)) and logged_in(request), **context
    )
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    response.headers["Server-Timing"] = f"render;dur={(time.perf_counter() - started) * 1000:.2f}"
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    response = page(
        request, "error.html", status, title=_TITLES.get(status, "Error"), message=message
    )
    if status == 503:
        response.headers["Retry-After"] = "2"
    return response


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(
        "/ui/login?" + urlencode({"next": target}), status_code=303, headers=SECURITY_HEADERS
    )


class UIRoute(APIRoute):
    """Routes whose errors answer as pages, and whose answers say their server time."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            started = time.perf_counter()
            raw = request.scope.get("raw_path", b"").lower()
            try:
                if b"%2f" in raw or b"%5c" in raw:  # an id holding '/' can never exist
                    raise PageError(404, "There is no such id: ids have no '/' or '\\'.")
                response = await handler(request)
            except LoginRequired:
                return login_redirect(request)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
                response = error_page(request, 400, f"{where}: {first.get('msg', 'invalid')}")
            except PageError as exc:
                response = error_page(request, exc.status, exc.message)
            except ServiceError as exc:
                if exc.status >= 500:  # the API's handler would log these: so do the pages
                    log.log(
                        logging.ERROR if exc.status == 500 else logging.WARNING,
                        "%s answered %d: %s",
                        request.url.path,
                        exc.status,
                        exc.message,
                        exc_info=exc.__cause__ if exc.status == 500 else None,
                    )
                status = 400 if exc.status == 422 else exc.status
                response = error_page(request, status, exc.message)
            elapsed = (time.perf_counter() - started) * 1000
            # app: queries and rendering, from the handler's start; render: the template alone.
            response.headers.append("Server-Timing", f"app;dur={elapsed:.2f}")
            return response

        return route_handler
