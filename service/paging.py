"""Opaque, signed keyset cursors.

A cursor carries the last key of a page and is signed (HMAC-SHA256, truncated) over that key and
the list it belongs to, with a secret kept in the database, so every replica accepts the cursors
of every other, and a garbled, forged or foreign cursor is refused with 422.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from service.errors import InvalidRequest

_TAG = 16
T = TypeVar("T")


def session_position(row: Any) -> list[Any]:
    """A session's place in the newest-first list of sessions (the API's and the browser's)."""
    return [row["created_at"].isoformat(), row["session_id"]]


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

    def page(
        self, scope: str, rows: list[T], limit: int, key: Callable[[T], list[Any]]
    ) -> tuple[list[T], str | None]:
        """Trim `rows` (fetched with `limit + 1`) to a page, and its next cursor, None when
        it is the last: the one extra row is how the end of a keyset list is known."""
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, self.issue(scope, key(rows[-1]))

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
