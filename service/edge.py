"""The outermost middleware: request ids, metrics and the access line, and the last-resort 500.

`RequestEdge` is one pure ASGI layer with one `send` wrapper (BaseHTTPMiddleware would add a
task and a stream per request; every layer and wrapper costs every request, so these share
one). For each HTTP request it:

- gives it an id: the client's `X-Request-ID` when it is a plausible one, else one from a
  random per-process prefix and a counter (unique across processes, no system call), and
  answers it in `X-Request-ID` on every response;
- sets that id as the logging context (`logs.REQUEST_ID`) while the request runs;
- times and counts it (`Metrics.observe`), labelled by route TEMPLATE
  (`/api/v1/sessions/{session_id}`), never by raw path, so ids cannot grow the number of
  series; unknown paths share `UNMATCHED`; and writes its access line;
- turns an unexpected exception into the 500 envelope, which carries the id too.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
from collections.abc import Iterable
from time import perf_counter
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import logs
from service.errors import ServiceError
from service.http import send_error
from service.metrics import METHODS, UNMATCHED, Metrics

log = logging.getLogger("service")

_REQUEST_ID = re.compile(r"^[\w.:@/+=-]{1,128}$")
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


class RequestEdge:
    """Request id, metrics, access line and the 500 envelope (see the module docstring)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._routes: list[Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode(
            "latin-1"
        )
        request_id = incoming if _REQUEST_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        status = 500  # what is answered when the app raises before it starts a response
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        token = logs.REQUEST_ID.set(request_id)
        error: str | None = None
        metrics = self.metrics
        metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            error = exc.__class__.__name__
            log.exception(
                "unhandled error in %s %s (request %s)", scope["method"], scope["path"], request_id
            )
            if responded:
                raise
            internal = ServiceError("internal error; the request id helps find out why")
            for message in send_error(internal, request_id):
                await send_with_id(message)
        finally:
            metrics.in_flight.dec()
            seconds = perf_counter() - started
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = self._route(scope)
            metrics.observe(method, route, status, seconds)
            logs.access(method, route, status, seconds, error)
            logs.REQUEST_ID.reset(token)

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None and getattr(route, "path", None):
            return str(route.path)
        # The router did not pick a route (refused before routing, unknown path, or a plain
        # Starlette route such as /openapi.json): match here, which is rare.
        for candidate in self._candidates(scope["app"].routes):
            match, _ = candidate.matches(scope)
            if match is not Match.NONE and getattr(candidate, "path", None):
                return str(candidate.path)
        return UNMATCHED

    def _candidates(self, routes: Iterable[Any]) -> list[Any]:
        if self._routes is None:
            try:  # FastAPI >= 0.137.2 nests included routers; this flattens them
                from fastapi.routing import iter_route_contexts
            except ImportError:
                self._routes = list(routes)
            else:
                self._routes = list(iter_route_contexts(list(routes)))
        return self._routes
