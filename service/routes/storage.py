"""/api/v1/storage: the Strands `Storage` protocol (opaque bytes under string keys) over HTTP.

Keys travel in the path, `/`-separated, each segment percent-encoded (a `.` segment as `%2E`,
which HTTP clients would otherwise drop); see `service.objects` for the key rules.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel

from service.errors import UnsupportedMediaType
from service.http import read_bounded, respond, respond_page
from service.models import ErrorEnvelope, Page
from service.objects import MAX_KEY_BYTES, normalize_key, normalize_prefix, query_words
from service.routes import Cursor, Limit, Svc, errors
from service.store import objects as store
from service.writes import write_of

router = APIRouter(prefix="/api/v1/storage", tags=["storage"])

OCTETS = "application/octet-stream"
Key = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_KEY_BYTES,
        description="The key: '/'-separated, segments percent-encoded.",
    ),
]
Prefix = Annotated[str, Query(max_length=4096, description="List keys starting with this.")]
_BYTES = {"schema": {"type": "string", "format": "binary"}}


class SearchHit(BaseModel):
    key: str
    score: float
    data: str | None = None  # base64, with include_data=true


@router.put(
    "/objects/{key:path}",
    status_code=204,
    response_class=Response,
    responses={
        **errors(413),
        415: {"model": ErrorEnvelope, "description": f"Body is not {OCTETS}."},
    },
    openapi_extra={"requestBody": {"required": True, "content": {OCTETS: _BYTES}}},
    summary="Store bytes under a key, replacing any value (atomic)",
)
async def write_object(key: Key, request: Request, svc: Svc) -> Response:
    normalized = normalize_key(key)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != OCTETS:
        raise UnsupportedMediaType(f"send the value as {OCTETS}, not {content_type or 'no type'!r}")
    limit = svc.settings.storage_max_object_bytes
    data = await read_bounded(request, limit, f"storage values are at most {limit} bytes")
    write = await write_of(request, None, body=data)
    await svc.db.write(write, "empty", store.write_object, normalized, data)
    return Response(status_code=204)


@router.get(
    "/objects/{key:path}",
    response_class=Response,
    responses={
        200: {"description": "The stored bytes.", "content": {OCTETS: _BYTES}},
        **errors(404),
    },
    summary="Read the bytes under a key",
)
async def read_object(key: Key, svc: Svc) -> Response:
    data = await svc.db.run(store.read_object, normalize_key(key))
    return Response(data, media_type=OCTETS)


@router.delete(
    "/objects/{key:path}",
    status_code=204,
    response_class=Response,
    responses=errors(),
    summary="Delete a key (done even when it does not exist)",
)
async def delete_object(key: Key, request: Request, svc: Svc) -> Response:
    normalized = normalize_key(key)
    write = await write_of(request, None, body=b"")
    await svc.db.write(write, "empty", store.delete_object, normalized)
    return Response(status_code=204)


@router.get(
    "/objects",
    response_model=Page[str],
    responses=errors(),
    summary="List keys starting with a prefix, in key (code point) order",
)
async def list_objects(
    request: Request, svc: Svc, prefix: Prefix = "", limit: Limit = 100, cursor: Cursor = None
) -> Response:
    normalized = normalize_prefix(prefix)
    scope = f"storage|{normalized}"
    after = str(svc.cursors.read(scope, cursor)[0]) if cursor is not None else ""
    keys = await svc.db.run(store.list_objects, normalized, after, limit + 1)
    keys, next_cursor = svc.cursors.page(scope, keys, limit, lambda k: [k])
    return respond_page(request, keys, next_cursor)


@router.get(
    "/search",
    response_model=Page[SearchHit],
    responses=errors(),
    summary="Keyword search over keys and contents (the SDK's default strategy)",
)
async def search_objects(
    svc: Svc,
    q: Annotated[str, Query(description="Words to look for; stop words are ignored.")],
    prefix: Prefix = "",
    limit: Limit = 100,
    include_data: Annotated[bool, Query(description="Include each value (base64).")] = False,
) -> Response:
    normalized = normalize_prefix(prefix)
    words = query_words(q)
    # A transaction: the search reads through a server-side cursor, which needs one.
    hits = (
        await svc.db.transaction(store.search_objects, normalized, words, limit, include_data)
        if words
        else []
    )
    items: list[dict[str, Any]] = []
    for key, score, data in hits:
        item: dict[str, Any] = {"key": key, "score": float(score)}
        if include_data:
            item["data"] = base64.b64encode(data or b"").decode()
        items.append(item)
    return respond({"items": items, "next_cursor": None})
