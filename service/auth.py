"""API keys: with API_KEYS set, `/api/v1/*` needs `Authorization: Bearer <key>`.

A pure ASGI middleware, so a refused request costs no routing or body parsing. Keys are
compared in constant time against every configured key, and never logged.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Unauthorized
from service.http import send_error
from service.settings import Settings

_ALWAYS_OPEN = ("/health/live", "/health/ready")
_KEYED_BY_SETTING = ("/metrics", "/health")


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.keys = [key.get_secret_value().encode() for key in settings.api_keys]
        self.protect_metrics = settings.metrics_require_key

    def _protected(self, path: str) -> bool:
        if path.startswith("/api/"):
            return True
        if path in _ALWAYS_OPEN:
            return False
        return self.protect_metrics and path in _KEYED_BY_SETTING

    def _authorized(self, scope: Scope) -> bool:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, presented = header.partition(b" ")
        if scheme.lower() != b"bearer" or not presented:
            return False
        # Compare with every key, not stopping at a match, so timing says nothing.
        matches = [hmac.compare_digest(presented.strip(), key) for key in self.keys]
        return any(matches)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.keys
            or not self._protected(scope["path"])
            or self._authorized(scope)
        ):
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        error = Unauthorized("missing or wrong API key: send Authorization: Bearer <key>")
        challenge = ((b"www-authenticate", b'Bearer realm="strands-session-backend"'),)
        for message in send_error(error, request_id, challenge):
            await send(message)
