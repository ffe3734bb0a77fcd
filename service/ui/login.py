"""The key for the session browser: a login form, a cookie derived from the key, a logout.

Only used when API_KEYS is set. The login is the browser's only POST: it writes nothing but the
cookie. A login posted from another origin is refused, and `next` only leads within /ui.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from service.http import read_bounded
from service.ui.web import (
    COOKIE,
    COOKIE_MAX_AGE,
    SECURITY_HEADERS,
    PageError,
    UIRoute,
    keys,
    logged_in,
    page,
    token,
    valid_key,
)

router = APIRouter(route_class=UIRoute, include_in_schema=False)


def _next_target(value: str) -> str:
    """Where to go after the login: only a path of this browser (never another site)."""
    parts = urlsplit(value)
    inside = parts.path == "/ui" or parts.path.startswith("/ui/")
    if parts.scheme or parts.netloc or not inside or "\\" in value:
        return "/ui"
    return value


@router.get("/ui/login")
async def login_form(request: Request, next: str = "/ui") -> Response:
    """The key form; without configured keys there is nothing to log in to."""
    if logged_in(request):
        return RedirectResponse(_next_target(next), status_code=303)
    return page(request, "login.html", next=_next_target(next), failed=False)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    """Check the key; on success keep a token derived from it in an HTTP-only cookie."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise PageError(403, "The login form must be sent from this site.")
    body = await read_bounded(request, 8192, "the login form is too large")
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    key, target = form.get("key", [""])[0], _next_target(form.get("next", ["/ui"])[0])
    if not keys(request):
        return RedirectResponse(target, status_code=303)
    if not key or not valid_key(request, key):
        return page(request, "login.html", status=401, next=target, failed=True)
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        COOKIE,
        token(key.encode()),
        max_age=COOKIE_MAX_AGE,
        path="/ui",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/ui/logout")
async def logout(request: Request) -> Response:
    """Forget the key (a link, not a form: it changes nothing stored)."""
    response = RedirectResponse("/ui/login", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(
        COOKIE, path="/ui", secure=request.url.scheme == "https", httponly=True, samesite="strict"
    )
    return response
