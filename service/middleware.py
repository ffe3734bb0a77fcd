"""Pure ASGI guards in front of the routers: API keys and encoded separators in ids, and CORS.

`Gate` refuses a request without a valid API key (401, `service.auth`), then answers
`422 invalid_id` for a `%2F` or `%5C` anywhere in a path under `/api/v1/sessions/`: decoded, it
would reach the router as a separator (and, say, a 307 to another route), never as part of an
id. Both checks share one layer: every layer costs every request.

`Cors` is Starlette's CORS middleware placed outside the API-key check, so that a browser's
preflight (which carries no credentials) is answered for the configured origins; a preflight
from any other origin is not treated as one and goes on to the app, which refuses it (401 when
keys are set, else 405) without any `Access-Control-*` header.
"""

from __future__ import annotations

from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import ApiKeys
from service.errors import InvalidId
from service.http import send_error
from service.settings import Settings

_GUARDED = b"/api/v1/sessions/"


class Gate:
    """API keys (`service.auth`), then the encoded-separator guard: one layer for both."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.keys = ApiKeys(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.keys.refusal(scope) or _encoded_separator(scope)
            if refusal is not None:
                for message in refusal:
                    await send(message)
                return
        await self.app(scope, receive, send)


def _encoded_separator(scope: Scope) -> tuple[Message, Message] | None:
    """The 422 answer for an encoded separator in an id of a session path, or None."""
    raw = (scope.get("raw_path") or b"").lower()
    if raw.startswith(_GUARDED) and (b"%2f" in raw or b"%5c" in raw):
        error = InvalidId("ids must not contain '/' or '\\' (sent as %2F or %5C)")
        return send_error(error, scope.get("state", {}).get("request_id"))
    return None


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
