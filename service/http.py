"""HTTP plumbing shared by the routers: JSON in and out, versions, request ids.

`JSONRoute` makes FastAPI read bodies with `service.jsonio` (value-exact, NaN refused, depth
bounded) and answers 415 for bodies that are not JSON; valid requests of simple routes are
passed to their handler directly (`service.direct`). Handlers answer with `respond`, which
serializes once with orjson; stored documents are already `orjson.Fragment`s. `NDJSONStream`
streams exports and message lists, and `prefers_ndjson` tells from `Accept` when a list is
asked for as a stream.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from service import jsonio, ndjson
from service.direct import direct_caller
from service.errors import PayloadTooLarge, ServiceError, UnsupportedMediaType, envelope
from service.settings import Settings

log = logging.getLogger(__name__)
_SEND_TIMEOUT_DEFAULT: float = Settings.model_fields["export_send_timeout_seconds"].default

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_JSON_TYPE = re.compile(r"^application/([\w.+-]*\+)?json\s*(;|$)", re.IGNORECASE)
_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,18})"\s*$')


async def read_bounded(request: Request, limit: int, too_large: str) -> bytes:
    """The body, refused with 413 (`too_large`) as soon as it is known to exceed `limit` bytes:
    from Content-Length before reading, or while counting what arrives."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(too_large)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


def send_error(
    error: ServiceError, request_id: str | None, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> tuple[Message, Message]:
    """The two ASGI messages of an error envelope, for middleware that answers by itself."""
    body = envelope(error, request_id)
    start: Message = {
        "type": "http.response.start",
        "status": error.status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class JSONRequest(Request):
    """A request whose JSON body is parsed by `service.jsonio`, within the configured limits."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            limit = self.app.state.settings.max_body_bytes
            self._body = await read_bounded(
                self, limit, f"request body is larger than {limit} bytes"
            )
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            depth = self.app.state.settings.max_json_depth
            self._json = jsonio.loads(await self.body(), max_depth=depth)
        return self._json


class JSONRoute(APIRoute):
    """Routes whose bodies go through `JSONRequest`; non-JSON bodies answer 415."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        direct = direct_caller(self)  # valid requests skip FastAPI's per-request machinery

        async def route_handler(request: Request) -> Response:
            request = JSONRequest(request.scope, request.receive)
            if request.method in _BODY_METHODS:
                content_type = request.headers.get("content-type", "")
                if not _JSON_TYPE.match(content_type):
                    raise UnsupportedMediaType(
                        f"send the body as application/json, not {content_type or 'no type'!r}"
                    )
                # Read here, outside FastAPI's body handling, which would turn 413 into 400.
                await request.body()
            if direct is not None:
                response = await direct(request)
                if response is not None:
                    return response
            return await handler(request)

        return route_handler


def respond(
    body: Any,
    status: int = 200,
    *,
    version: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON response; `version` becomes the ETag."""
    response = Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )
    if version is not None:
        response.headers["ETag"] = etag(version)
    return response


def respond_page(request: Request, items: list[Any], next_cursor: str | None) -> Response:
    """A page of a list, `{"items": [...], "next_cursor": ...}`. A page with a next one also
    carries it as `Link: <...>; rel="next"` (RFC 8288), so a client can ask for the next page
    before it has parsed this one."""
    headers = None if next_cursor is None else {"Link": next_link(request, next_cursor)}
    return respond({"items": items, "next_cursor": next_cursor}, headers=headers)


def next_link(request: Request, cursor: str) -> str:
    """The `Link` value of the page after `cursor`: this request's path (as the client sent
    it, percent-encoded) and query, with `cursor` replaced and `offset` dropped (a cursor
    holds the position already)."""
    raw = request.scope.get("raw_path")
    # Some servers leave the query in raw_path, which the ASGI specification keeps out of it.
    path = raw.partition(b"?")[0].decode("latin-1") if raw else quote(request.scope["path"])
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in _POSITION]
    query.append(("cursor", cursor))
    return f'<{path}?{urlencode(query)}>; rel="next"'


_POSITION = frozenset({"cursor", "offset"})


def respond_raw(content: bytes, version: int) -> Response:
    """A cached, already serialized body."""
    return Response(content, media_type="application/json", headers={"ETag": etag(version)})


def not_modified(version: int) -> Response:
    return Response(status_code=304, headers={"ETag": etag(version)})


def etag(version: int) -> str:
    return f'"{version}"'


def if_match(request: Request) -> int | None:
    """The version an If-Match asks for; -1 (matches nothing) when it is not one we issued."""
    value = request.headers.get("if-match")
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.match(value)
    return int(match.group(1)) if match else -1


def none_match(request: Request, version: int) -> bool:
    """True when If-None-Match names `version` (or is `*`): answer 304."""
    value = request.headers.get("if-none-match")
    if value is None:
        return False
    tags = [tag.strip() for tag in value.split(",")]
    return "*" in tags or any(
        (m := _ETAG.match(tag)) is not None and int(m.group(1)) == version for tag in tags
    )


class NDJSONStream(StreamingResponse):
    """Streams `first`, then `rest`; closes `rest` however the response ends (a client that
    hangs up included), which returns its connection to the pool at once. A reader that takes
    nothing for `send_timeout` seconds (the socket's buffers full) is cut off: the stream ends
    without its last chunk, so the reader can tell it is incomplete."""

    media_type = ndjson.MEDIA_TYPE

    def __init__(
        self,
        first: bytes,
        rest: AsyncGenerator[bytes, None],
        send_timeout: float = _SEND_TIMEOUT_DEFAULT,
    ) -> None:
        self._rest = rest
        self._send_timeout = send_timeout

        async def chunks() -> AsyncGenerator[bytes, None]:
            yield first
            async for chunk in rest:
                yield chunk

        super().__init__(chunks())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def bounded_send(message: Message) -> None:
            async with asyncio.timeout(self._send_timeout):
                await send(message)

        try:
            await super().__call__(scope, receive, bounded_send)
        except* TimeoutError:
            # Returning with the response unfinished makes the server drop the connection.
            log.warning(
                "stream of %s cut off: its reader took nothing for %.0fs",
                scope["path"],
                self._send_timeout,
            )
        finally:
            await self._rest.aclose()


def prefers_ndjson(request: Request) -> bool:
    """Whether `Accept` asks for NDJSON rather than JSON: `application/x-ndjson` is named with a
    higher q-value than JSON gets (from `application/json`, else `application/*`, else `*/*`).
    Ties go to JSON, the contract's format; a wildcard alone never selects NDJSON."""
    accept = request.headers.get("accept")
    if not accept or "ndjson" not in accept:
        return False
    ranges: dict[str, float] = {}
    for part in accept.split(","):
        media, _, parameters = part.partition(";")
        ranges.setdefault(media.strip().lower(), _quality(parameters))
    stream = ranges.get(ndjson.MEDIA_TYPE, 0.0)
    json = next((ranges[m] for m in ("application/json", "application/*", "*/*") if m in ranges), 0)
    return stream > json


def _quality(parameters: str) -> float:
    """The q-value among a media range's parameters: 1 when absent, 0 when unreadable."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0
