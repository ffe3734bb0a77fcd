"""OpenTelemetry tracing from the standard `OTEL_*` variables; absent (and free) unless asked for.

Tracing is on when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or, with it
unset, when `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; never
with `OTEL_SDK_DISABLED=true`. When off, nothing is instrumented: no middleware, no wrapped
connections. When on:

- every request is a SERVER span (the FastAPI instrumentation; an incoming W3C `traceparent`
  is continued), except `/health/live` and `/metrics`;
- every statement is a CLIENT span named after its query in `sql/` (`read_agent`, …), made by
  `TracedConnection`; the text holds only `$n` placeholders, so it is recorded too. The
  asyncpg auto-instrumentation stays off: it would make a second span per statement.

The SDK reads the rest itself: sampler (`OTEL_TRACES_SAMPLER[_ARG]`), batching (`OTEL_BSP_*`),
endpoint, headers, time-out and compression of the OTLP exporter, resource attributes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import asyncpg
from opentelemetry import trace

from service import __version__
from service.queries import Q

if TYPE_CHECKING:
    from fastapi import FastAPI

SERVICE_NAME = "strands-session-backend"
EXCLUDED_URLS = "/health/live,/metrics"
PROTOCOLS = ("http/protobuf", "grpc")

_NAMES = {text: name for name, text in Q.items()}
_tracer: trace.Tracer | None = None


def exporters(environ: Mapping[str, str]) -> list[str]:
    """The trace exporters the environment asks for; empty means tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if named:
        return [n for n in (p.strip().lower() for p in named.split(",")) if n and n != "none"]
    if environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        return ["otlp"]
    return []


def protocol(environ: Mapping[str, str]) -> str:
    return (
        (
            environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        .strip()
        .lower()
    )


def check(environ: Mapping[str, str]) -> None:
    """Raise ValueError naming the variable when the tracing set-up cannot be built."""
    for name in exporters(environ):
        if name not in ("otlp", "console"):
            raise ValueError(
                f"OTEL_TRACES_EXPORTER: unsupported exporter {name!r} (use otlp, console or none)"
            )
        if name == "otlp":
            _otlp_exporter_class(environ)


def _otlp_exporter_class(environ: Mapping[str, str]) -> type[Any]:
    proto = protocol(environ)
    if proto == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter
    if proto == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError:
            raise ValueError(
                "OTEL_EXPORTER_OTLP_PROTOCOL: grpc needs the package "
                "opentelemetry-exporter-otlp-proto-grpc; install it or use "
                "http/protobuf"
            ) from None
        return GrpcExporter  # type: ignore[no-any-return]
    raise ValueError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL: unsupported protocol {proto!r} "
        f"(use {' or '.join(PROTOCOLS)})"
    )


def setup(app: FastAPI, environ: Mapping[str, str]) -> bool:
    """Instrument `app` when the environment asks for tracing; True when it did."""
    names = exporters(environ)
    if not names:
        return False
    check(environ)
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create({"service.version": __version__})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER
    for name in names:
        exporter = _otlp_exporter_class(environ)() if name == "otlp" else ConsoleSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    excluded = ",".join(
        filter(
            None,
            (
                environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS")
                or environ.get("OTEL_PYTHON_EXCLUDED_URLS"),
                EXCLUDED_URLS,
            ),
        )
    )
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls=excluded, exclude_spans=["receive", "send"]
    )
    global _tracer
    _tracer = provider.get_tracer("service.db", __version__)

    async def shutdown() -> None:
        global _tracer
        _tracer = None
        await asyncio.to_thread(provider.shutdown)  # flushes what is still batched

    extend_lifespan(app, after=shutdown)
    return True


def connection_class() -> type[asyncpg.Connection]:
    """The class of pooled connections: `TracedConnection` while tracing is on."""
    return TracedConnection if _tracer is not None else asyncpg.Connection


def extend_lifespan(
    app: FastAPI,
    before: Callable[[], Awaitable[None]] | None = None,
    after: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run `before` ahead of the app's own start-up, and `after` once its shutdown is done."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        if before is not None:
            await before()
        try:
            async with inner(app_) as state:
                yield state
        finally:
            if after is not None:
                await after()

    app.router.lifespan_context = lifespan


_TRANSACTION_CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"})


def _verb(sql: str) -> str:
    words = sql.split(None, 1)
    return words[0].rstrip(";").upper() if words else ""


class TracedConnection(asyncpg.Connection):
    """An asyncpg connection whose statements are spans named after their query."""

    _span_base: dict[str, Any] | None = None

    def _base(self) -> dict[str, Any]:
        if self._span_base is None:
            addr = self._addr  # type: ignore[attr-defined]
            database = self._params.database  # type: ignore[attr-defined]
            base: dict[str, Any] = {
                "db.system": "postgresql",
                "db.system.name": "postgresql",
                "db.namespace": database,
                "db.name": database,
            }
            if isinstance(addr, tuple):
                base["server.address"], base["server.port"] = addr[0], int(addr[1])
            else:  # a Unix socket path
                base["server.address"] = str(addr)
            self._span_base = base
        return self._span_base

    @contextmanager
    def _span(self, sql: str) -> Iterator[None]:
        tracer = _tracer
        name = _NAMES.get(sql)
        verb = _verb(sql)
        # Of the statements asyncpg makes itself, only transaction control is worth a span (a
        # slow COMMIT); its type introspection and the reset on release are not. Those spans
        # are shown only inside a trace.
        if tracer is None or (
            name is None
            and (verb not in _TRANSACTION_CONTROL or not trace.get_current_span().is_recording())
        ):
            yield
            return
        attributes = {**self._base(), "db.operation.name": verb, "db.operation": verb}
        if name is not None:
            attributes["db.query.summary"] = name
            attributes["db.query.text"] = sql
        with tracer.start_as_current_span(
            name or verb, kind=trace.SpanKind.CLIENT, attributes=attributes
        ):
            yield

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        with self._span(query):
            return await super().execute(query, *args, **kwargs)

    async def executemany(self, command: str, args: Any, **kwargs: Any) -> None:
        with self._span(command):
            await super().executemany(command, args, **kwargs)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[Any]:
        with self._span(query):
            return await super().fetch(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        with self._span(query):
            return await super().fetchrow(query, *args, **kwargs)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        with self._span(query):
            return await super().fetchval(query, *args, **kwargs)

    async def fetchmany(self, query: str, args: Any, **kwargs: Any) -> list[Any]:
        with self._span(query):
            return await super().fetchmany(query, args, **kwargs)
