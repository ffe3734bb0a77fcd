"""Opaque, signed keyset cursors.

A cursor carries the last key of a page and is signed (HMAC-SHA256, truncated) over that key and
the list it belongs to, with a secret kept in the database, so every replica accepts the cursors
of every other, and a garbled, forged or foreign cursor is refused with 422.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from service.errors import InvalidRequest

_TAG = 16


class Cursors:
    """Issues and checks the cursors of every list."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def _sign(self, scope: str, payload: bytes) -> bytes:
        return hmac.new(self._key, scope.encode() + b"\0" + payload, hashlib.sha256).digest()[:_TAG]

    def issue(self, scope: str, key: list[Any]) -> str:
        """A cursor for the position after `key` in the list named by `scope`."""
        payload = orjson.dumps(key)
        return base64.urlsafe_b64encode(self._sign(scope, payload) + payload).decode().rstrip("=")

    def read(self, scope: str, cursor: str) -> list[Any]:
        """The key inside `cursor`; 422 unless this service issued it for this very list."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            tag, payload = raw[:_TAG], raw[_TAG:]
            if len(tag) == _TAG and hmac.compare_digest(tag, self._sign(scope, payload)):
                key = orjson.loads(payload)
                if isinstance(key, list):
                    return key
        except ValueError:
            pass
        raise InvalidRequest("cursor is not one this list issued; start again without it")
