"""The request/response mapping: JSON bodies in and out, ids in paths, Strands objects built from
answers. No I/O happens here."""

from __future__ import annotations

import base64
import gc
import inspect
import json
import math
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pydantic_core
from strands.types.session import (
    Session,
    SessionAgent,
    SessionMessage,
    SessionType,
    decode_bytes_values,
)

from .errors import InvalidSessionValueError, SessionBackendError, _error_from_response

try:
    from opentelemetry import propagate as _otel_propagate
    from opentelemetry import trace as _otel_trace
except ImportError:  # tracing is optional
    _otel_propagate = None  # type: ignore[assignment]
    _otel_trace = None  # type: ignore[assignment]

API_PREFIX: Final = "/api/v1"
# Asks for a message list as one stream; a service without streams answers a JSON page.
NDJSON: Final = "application/x-ndjson"
STREAM_ACCEPT: Final = f"{NDJSON}, application/json;q=0.9"


def _encode_stray(value: object) -> object:
    """Encode bytes the way Strands does; refuse every other non-JSON type."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"__bytes_encoded__": True, "data": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"a {type(value).__name__} is not JSON serializable")


_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_encode_stray
)
_ASCII_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=_encode_stray
)


def _non_finite_path(value: Any, path: str = "$") -> str | None:
    """Where the first NaN or Infinity sits in ``value``, as a ``$.a[0]`` path."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        items: Any = ((f"{path}.{key}", item) for key, item in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for item_path, item in items:
        if (found := _non_finite_path(item, item_path)) is not None:
            return found
    return None


def _encode(payload: Any) -> bytes:
    """Serialise a request body, refusing NaN/Infinity before anything is sent."""
    try:
        try:
            return _ENCODER.encode(payload).encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate has no UTF-8 form; as a \u escape it is still valid JSON.
            return _ASCII_ENCODER.encode(payload).encode("ascii")
    except ValueError as exc:
        where = _non_finite_path(payload)
        reason = (
            f"the value at {where} is NaN or Infinity, which JSON cannot carry; "
            "store None or a string instead"
            if where
            else str(exc)
        )
        raise InvalidSessionValueError(
            f"refusing to send the session data: {reason}", code="invalid_value"
        ) from exc
    except TypeError as exc:
        raise InvalidSessionValueError(
            f"refusing to send the session data: {exc}", code="invalid_value"
        ) from exc


def _loads(content: bytes) -> Any:
    """Parse an answer exactly as ``json.loads`` does, with pydantic-core's parser wherever it
    gives the same values: three times as fast on a 1 MB page.

    Unlike orjson it keeps integers of any size exactly (orjson turns those beyond 64 bits
    into floats); what it refuses and ``json`` reads (lone surrogates, nesting past 200
    levels), and errors, are left to ``json``.
    """
    try:
        return pydantic_core.from_json(content)
    except ValueError:
        return json.loads(content)


_gc_lock: Final = threading.Lock()
_gc_pauses = [0, False]  # pauses under way; whether the collector was on when the first began


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while a page's objects are built.

    A page of 1,000 messages makes some 4,000 container objects that live on. With the
    collector running, they set off young collections every 700 allocations, and those soon
    trigger full ones, each walking every object of the process (60 ms in a process that has
    imported Strands): in 30 restores of 10,000 messages, 17 full collections and 650 ms of
    collecting; with it paused page by page, 2 and 65 ms. Nothing here makes cycles, so there
    is nothing to collect meanwhile. Nested and concurrent pauses restore the collector once,
    as the first one found it.
    """
    with _gc_lock:
        if _gc_pauses[0] == 0:
            _gc_pauses[1] = gc.isenabled()
            gc.disable()
        _gc_pauses[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses[0] -= 1
            if _gc_pauses[0] == 0 and _gc_pauses[1]:
                gc.enable()


def _json(response: httpx.Response) -> Any:
    try:
        return _loads(response.content)
    except ValueError as exc:
        raise _error_from_response(response, SessionBackendError, "non-JSON answer: ") from exc


def _copy_timestamps(
    target: Session | SessionAgent | SessionMessage, response: httpx.Response
) -> None:
    """Adopt the server-assigned timestamps, so the caller's object matches what is stored."""
    stored = _json(response)
    for name in ("created_at", "updated_at"):
        if isinstance(stored.get(name), str):
            setattr(target, name, stored[name])


_Built = TypeVar("_Built", SessionAgent, SessionMessage)


_PARAMETERS: Final[dict[type, frozenset[str]]] = {
    cls: frozenset(inspect.signature(cls).parameters) for cls in (SessionAgent, SessionMessage)
}


def _from_dict(cls: type[_Built], data: dict[str, Any], *, has_bytes: bool = True) -> _Built:
    """Strands' ``from_dict`` (known keys only, bytes decoded), with the signature looked up once.

    ``from_dict`` calls ``inspect.signature`` for every key of every object: 0.3 ms a message,
    three seconds of CPU in a 10,000-message restore. ``has_bytes=False`` (the body holds no
    encoded bytes at all) skips walking every value for them.
    """
    known = _PARAMETERS[cls]
    fields = {k: v for k, v in data.items() if k in known}
    return cls(**(decode_bytes_values(fields) if has_bytes else fields))


# ``SessionMessage``'s fields, in the order its constructor takes them positionally: half the
# cost of keywords for a restore's thousands of messages. A Strands that orders them otherwise
# gets keywords (`_IN_ORDER` is then False).
_MESSAGE_FIELDS: Final = ("message", "message_id", "redact_message", "created_at", "updated_at")
_IN_ORDER: Final = tuple(f.name for f in fields(SessionMessage))[:5] == _MESSAGE_FIELDS


def _messages_from(items: list[dict[str, Any]], *, has_bytes: bool) -> list[SessionMessage]:
    """The messages of a page. Without encoded bytes in the page, items holding every field of
    a ``SessionMessage`` are built field by field (a tenth of the cost of ``_from_dict``, other
    keys ignored as it does); anything else goes through ``_from_dict``."""
    if has_bytes:
        return [_from_dict(SessionMessage, item) for item in items]
    messages = []
    for item in items:
        try:
            if _IN_ORDER:
                message = SessionMessage(
                    item["message"],
                    item["message_id"],
                    item["redact_message"],
                    item["created_at"],
                    item["updated_at"],
                )
            else:
                message = SessionMessage(**{name: item[name] for name in _MESSAGE_FIELDS})
        except KeyError:  # a field left out takes Strands' default, as from_dict does
            message = _from_dict(SessionMessage, item, has_bytes=False)
        messages.append(message)
    return messages


class _MessageStream:
    """A message list answered as NDJSON, one message per line, built into ``SessionMessage``s
    as lines arrive, so that building overlaps receiving.

    A driver frames each attempt with ``receiving()``, which starts over (a retry after a broken
    stream keeps nothing of it), pauses the garbage collector for the attempt as a page does,
    and marks the list ``complete`` once the answer ended cleanly.
    """

    def __init__(self) -> None:
        self.messages: list[SessionMessage] = []
        self.complete = False
        self._rest = b""

    @contextmanager
    def receiving(self) -> Iterator[Callable[[bytes], None]]:
        self.messages, self.complete, self._rest = [], False, b""
        with _gc_paused():
            yield self._feed
            self._build(self._rest)  # a last line without its newline
        self.complete = True

    def _feed(self, chunk: bytes) -> None:
        cut = chunk.rfind(b"\n")
        if cut < 0:
            self._rest += chunk
            return
        lines, self._rest = self._rest + chunk[:cut], chunk[cut + 1 :]
        self._build(lines)

    def _build(self, lines: bytes) -> None:
        if not lines.strip():
            return
        # Complete lines are JSON texts without raw newlines: as one array they parse at once.
        try:
            items = _loads(b"[" + lines.replace(b"\n", b",") + b"]")
        except ValueError as exc:
            raise SessionBackendError(f"non-JSON line in a message stream: {exc}") from exc
        has_bytes = b"__bytes_encoded__" in lines
        self.messages.extend(_messages_from(items, has_bytes=has_bytes))


def _is_stream(response: httpx.Response) -> bool:
    """Whether ``response`` is a message stream (else a sink's request is answered whole)."""
    return response.status_code == 200 and response.headers.get("content-type", "").startswith(
        NDJSON
    )


def _next_cursor(response: httpx.Response) -> str | None:
    """The cursor of the next page from the answer's ``Link: <...>; rel="next"``, if any."""
    url = response.links.get("next", {}).get("url")
    if not url:
        return None
    cursors = parse_qs(urlsplit(url).query).get("cursor")
    return cursors[0] if cursors else None


def _session_from(response: httpx.Response) -> Session:
    return _session_from_dict(_json(response))


def _session_from_dict(data: dict[str, Any]) -> Session:
    if data.get("session_type") in SessionType._value2member_map_:
        data["session_type"] = SessionType(data["session_type"])
    return Session.from_dict(data)


# --- requests ---------------------------------------------------------------------------------


def _path(*segments: str | int) -> str:
    """Build an API path, percent-encoding each id (and dot-only ids, which URLs would fold)."""
    parts = []
    for segment in segments:
        text = quote(str(segment), safe="")
        parts.append(text.replace(".", "%2E") if text in {".", ".."} else text)
    return API_PREFIX + "/" + "/".join(parts)


def _check_id(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidSessionValueError(
            f"{kind} must be a non-empty string, got {value!r}", code="invalid_id"
        )
    return value


_WRITES: Final = frozenset({"POST", "PUT", "DELETE"})


@dataclass(slots=True)
class _Request:
    """One HTTP request an operation asks its driver to send, with its retry bookkeeping.

    The driver resends this same object on every attempt, so its headers (``X-Request-ID``,
    ``Idempotency-Key``) are the same on each. ``deadline`` (a ``time.monotonic()`` value) is set
    at the first attempt; ``last_failure`` is the failure of the latest attempt.

    ``ahead``: the operation will want this answer later. The driver starts sending it, answers
    the yield with ``_STARTED`` once the request is written, and gives the answer (or raises
    what sending it raised) when the operation yields the same request again; meanwhile the
    operation parses. ``trace`` is httpcore's trace extension for the request (how a driver
    learns that it is written).
    """

    method: str
    path: str
    body: bytes | None = None
    params: dict[str, str | int] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    deadline: float | None = None
    last_failure: Exception | None = None
    ahead: bool = False
    trace: Callable[[str, dict[str, Any]], Any] | None = None
    sink: _MessageStream | None = None


def _written(name: str) -> bool:
    """Whether httpcore's trace event `name` says the request is written out whole."""
    return name.endswith("send_request_body.complete")


# What a driver answers to a request yielded with ``ahead`` set: it is on its way.
_STARTED: Final = httpx.Response(202)


def _request(
    method: str,
    path: str,
    payload: Any = None,
    *,
    params: dict[str, str | int] | None = None,
    if_match: str | None = None,
    accept: str | None = None,
) -> _Request:
    # One id for all attempts, so the server's logs tie retries of one call together.
    headers = {"X-Request-ID": uuid.uuid4().hex}
    if method in _WRITES:
        # One key per logical call, sent on every attempt: the service applies a write once,
        # and answers a repeat with the first attempt's outcome.
        headers["Idempotency-Key"] = uuid.uuid4().hex
    body = None
    if payload is not None:
        body = _encode(payload)
        headers["Content-Type"] = "application/json"
    if if_match is not None:
        headers["If-Match"] = if_match
    if accept is not None:
        headers["Accept"] = accept
    if _otel_propagate is not None and _otel_trace.get_current_span().get_span_context().is_valid:
        _otel_propagate.inject(headers)
    return _Request(method, path, body, params, headers)


def _message_id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidSessionValueError(f"message_id must be an int >= 0, got {value!r}")
    return value
