"""Pure ASGI guards in front of the routers: encoded separators in ids, and CORS.

`EncodedSeparatorGuard` answers `422 invalid_id` for a `%2F` or `%5C` anywhere in a path under
`/api/v1/sessions/`: decoded, it would reach the router as a separator (and, say, a 307 to
another route), never as part of an id.

`Cors` is Starlette's CORS middleware placed outside the API-key check, so that a browser's
preflight (which carries no credentials) is answered for the configured origins; a preflight
from any other origin is not treated as one and goes on to the app, which refuses it (401 when
keys are set, else 405) without any `Access-Control-*` header.
"""

from __future__ import annotations

from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import InvalidId
from service.http import send_error

_GUARDED = b"/api/v1/sessions/"


class EncodedSeparatorGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = (scope.get("raw_path") or b"").lower()
            if raw.startswith(_GUARDED) and (b"%2f" in raw or b"%5c" in raw):
                error = InvalidId("ids must not contain '/' or '\\' (sent as %2F or %5C)")
                request_id = scope.get("state", {}).get("request_id")
                for message in send_error(error, request_id):
                    await send(message)
                return
        await self.app(scope, receive, send)


class Cors(CORSMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            preflight = origin is not None and "access-control-request-method" in headers
            if preflight and not self.is_allowed_origin(origin=origin or ""):
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
