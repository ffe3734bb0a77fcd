"""What identifies one write request: its idempotency key, its fingerprint, its session.

Every write route (POST, PUT, DELETE) builds a `Write` with `write_of(request, session_id)` and
hands it to `Database.write` (service.db), the one path every write goes through. The key is
the client's `Idempotency-Key` header (draft-ietf-httpapi-idempotency-key-header; at most 255
characters), or one made here when the client sent none, so that the service's own retry after
a lost connection can find out what its first attempt did. The fingerprint is a SHA-256 of the
method, the raw path with its query, and the body: the same key with another fingerprint is a
different request, answered 422.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.requests import Request

from service.errors import InvalidRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Keys this service makes carry a prefix no client key of the same shape is likely to take.
_GENERATED_PREFIX = "srv-"


@dataclass(frozen=True, slots=True)
class Key:
    """An idempotency key and the fingerprint of the request it was sent with."""

    value: str
    fingerprint: bytes
    given: bool  # sent by the client (False: made by the service for its own retries)


@dataclass(frozen=True, slots=True)
class Write:
    """One write request as the write path sees it.

    `session_id` is the session the write is under (None for writes outside sessions, e.g.
    storage objects and imports); per-session pre-write checks (`Database.pre_write`) run for
    it. `headers` are the request's, for such checks (a lease token, say). `creates`: a POST,
    whose 200 answers an identical repeat of what is stored, which records nothing.
    """

    key: Key
    session_id: str | None
    headers: Headers
    creates: bool = False


def fingerprint(method: str, raw_path: bytes, query: bytes, body: bytes) -> bytes:
    """SHA-256 over what makes two requests the same request."""
    digest = hashlib.sha256()
    for part in (method.encode(), raw_path, query):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    digest.update(body)
    return digest.digest()


async def write_of(
    request: Request, session_id: str | None = None, body: bytes | None = None
) -> Write:
    """The `Write` of `request`; `body` when the route read it itself (else the cached body).

    A key longer than 255 characters (or empty) is 422 invalid_request.
    """
    given = request.headers.get(HEADER)
    if given is not None and not 1 <= len(given) <= MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"{HEADER}: must be 1 to {MAX_KEY_LENGTH} characters, got {len(given)}"
        )
    if body is None:
        body = await request.body()
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    key = Key(
        value=given if given is not None else _GENERATED_PREFIX + secrets.token_hex(16),
        fingerprint=fingerprint(request.method, raw_path, scope.get("query_string", b""), body),
        given=given is not None,
    )
    return Write(key, session_id, request.headers, request.method == "POST")


_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "One key per logical write, the same on every retry of it: a repeat answers "
    "the first outcome and applies nothing; the same key with another request is 422. Kept "
    "IDEMPOTENCY_TTL_SECONDS (24 h).",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}


def document(app: FastAPI) -> None:
    """Describe the Idempotency-Key header on every write of /api/v1 in the OpenAPI document
    (the routes read it through `write_of`, not as a parameter of each handler)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path, item in schema.get("paths", {}).items():
                if not path.startswith("/api/v1/"):
                    continue
                for method in ("post", "put", "delete"):
                    if method in item:
                        item[method].setdefault("parameters", []).append(dict(_PARAMETER))
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
