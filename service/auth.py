"""API keys: with API_KEYS set, `/api/v1/*` needs `Authorization: Bearer <key>`.

Checked in `service.middleware.Gate`, a pure ASGI middleware, so a refused request costs no
routing or body parsing. Keys are compared in constant time against every configured key,
and never logged.
"""

from __future__ import annotations

import hmac

from starlette.types import Message, Scope

from service.errors import Unauthorized
from service.http import send_error
from service.settings import Settings

_ALWAYS_OPEN = ("/health/live", "/health/ready")
_KEYED_BY_SETTING = ("/metrics", "/health")


class ApiKeys:
    """The configured keys, and the refusal of a request that does not present one of them."""

    def __init__(self, settings: Settings) -> None:
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

    def refusal(self, scope: Scope) -> tuple[Message, Message] | None:
        """The 401 answer (two ASGI messages) for an HTTP request without a valid key, or None."""
        if not self.keys or not self._protected(scope["path"]) or self._authorized(scope):
            return None
        request_id = scope.get("state", {}).get("request_id")
        error = Unauthorized("missing or wrong API key: send Authorization: Bearer <key>")
        challenge = ((b"www-authenticate", b'Bearer realm="strands-session-backend"'),)
        return send_error(error, request_id, challenge)
