"""Logging: one JSON object per line (LOG_FORMAT=json) or a human line (text), at LOG_LEVEL.

`dict_config(settings)` is a `logging.config.dictConfig` mapping. `python -m service` applies it
with `configure(settings)` and hands it to uvicorn, which applies it again in every worker
process (a spawned worker inherits no logging set-up). uvicorn's own loggers propagate to the
same handler; its access log stays off: `service.metrics` writes one access line per request
instead, with the route template rather than the raw path.

The request id of the request being served (`REQUEST_ID`) and the current trace and span ids
are added to every line logged while it runs. Nothing here logs bodies, queries or headers.
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace

from service.settings import LogFormat, Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

access_log = logging.getLogger("service.access")

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}


def _context(record: logging.LogRecord) -> dict[str, str]:
    """request_id, trace_id and span_id of the request a record was logged in, when known."""
    found: dict[str, str] = {}
    request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
    if request_id:
        found["request_id"] = request_id
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        found["trace_id"] = format(span.trace_id, "032x")
        found["span_id"] = format(span.span_id, "016x")
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp, level, logger, message, context, extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        out.update(_context(record))
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id]: message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = _context(record).get("request_id")
        record.context = f" [{request_id}]" if request_id else ""
        return super().format(record)


def dict_config(settings: Settings) -> dict[str, Any]:
    """The logging set-up of one process, for `logging.config.dictConfig` (picklable)."""
    formatter = "JsonFormatter" if settings.log_format is LogFormat.json else "TextFormatter"
    level = settings.log_level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"service.logs.{formatter}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            **{
                name: {"level": level, "handlers": [], "propagate": True}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi")
            },
            "uvicorn.access": {"level": level, "handlers": [], "propagate": False},
        },
    }


def configure(settings: Settings) -> None:
    """Apply LOG_FORMAT and LOG_LEVEL to this process."""
    logging.config.dictConfig(dict_config(settings))


def access(method: str, route: str, status: int, seconds: float, error: str | None = None) -> None:
    """The access line of one request (request id from the context)."""
    level = logging.ERROR if error else logging.WARNING if status >= 500 else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    extra: dict[str, Any] = {
        "request_id": REQUEST_ID.get(),
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
    }
    if error is not None:
        extra["error"] = error
    access_log.log(
        level,
        "%s %s %d %.1fms%s",
        method,
        route,
        status,
        seconds * 1000,
        f" ({error})" if error else "",
        extra=extra,
    )
