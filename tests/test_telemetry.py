"""Tracing: a real `python -m service` exporting to a real OTLP/HTTP receiver in this test.

The receiver is a small `http.server` on a free port that decodes `ExportTraceServiceRequest`
protobufs, as an OpenTelemetry collector would.
"""

from __future__ import annotations

import gzip
import http.server
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from service import telemetry
from service.app import create_app
from service.queries import Q
from tests.conftest import app_client, make_settings

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


class Receiver(http.server.ThreadingHTTPServer):
    """Accepts POST /v1/traces; keeps every span with its resource attributes."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[tuple[dict[str, Any], Span]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def received(self) -> list[tuple[dict[str, Any], Span]]:
        with self.lock:
            return list(self.spans)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.server.lock:
            self.server.paths.append(self.path)
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    self.server.spans.extend((resource, s) for s in scope_spans.spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


def _attributes(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in pairs:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _otel_env(receiver: Receiver, database_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_TRACES_EXPORTER": "",  # as if unset: the endpoint alone turns tracing on
        "OTEL_SDK_DISABLED": "",
        "OTEL_SERVICE_NAME": "",
        **extra,
    }


def _wait_for(
    receiver: Receiver, trace_id: str, names: set[str], timeout: float = 15.0
) -> list[tuple[dict[str, Any], Span]]:
    deadline = time.monotonic() + timeout
    while True:
        spans = [(r, s) for r, s in receiver.received() if s.trace_id.hex() == trace_id]
        if names <= {s.name for _, s in spans} or time.monotonic() > deadline:
            return spans
        time.sleep(0.05)


def test_requests_and_statements_become_spans_of_the_callers_trace(
    service_process, database_url, receiver
):
    proc = service_process(_otel_env(receiver, database_url))
    session_id = f"traced-{uuid.uuid4().hex}"
    with httpx.Client(base_url=proc.url) as http_client:
        assert http_client.get("/health/live").status_code == 200
        answer = http_client.post(
            "/api/v1/sessions",
            json={"session_id": session_id, "session_type": "AGENT"},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        assert answer.status_code == 201

    spans = _wait_for(receiver, TRACE_ID, {"POST /api/v1/sessions", "create_session"})
    assert all(path == "/v1/traces" for path in receiver.paths)
    by_name = {s.name: (resource, s) for resource, s in spans}
    resource, server = by_name["POST /api/v1/sessions"]
    assert resource["service.name"] == "strands-session-backend"
    assert server.kind == Span.SPAN_KIND_SERVER
    assert server.parent_span_id.hex() == PARENT_ID  # the caller's trace is continued
    attrs = _attributes(server.attributes)
    assert (attrs.get("http.request.method") or attrs.get("http.method")) == "POST"
    assert attrs["http.route"] == "/api/v1/sessions"
    assert (attrs.get("http.response.status_code") or attrs.get("http.status_code")) == 201

    request_span_ids = {s.span_id for _, s in spans if s.kind != Span.SPAN_KIND_CLIENT}
    statements = [s for _, s in spans if s.kind == Span.SPAN_KIND_CLIENT]
    named = [s for s in statements if s.name in Q]
    assert [s.name for s in named] == ["create_session"]  # one span each: no auto-instrumentation
    assert {s.name for s in statements} - set(Q) <= {"BEGIN", "COMMIT", "ROLLBACK"}
    database = urlsplit(database_url).path.lstrip("/")
    for span in statements:
        assert span.parent_span_id in request_span_ids
        db = _attributes(span.attributes)
        assert db["db.system"] == "postgresql"
        assert db["db.namespace"] == database and db["db.name"] == database
        assert db["server.address"] and isinstance(db["server.port"], int)
        assert db["db.operation.name"]
        assert session_id not in str(db)  # parameter values never travel
    create = _attributes(named[0].attributes)
    assert create["db.query.summary"] == "create_session"
    assert create["db.query.text"] == Q["create_session"]
    assert create["db.operation.name"] == Q["create_session"].split()[0].upper()
    # /health/live is excluded from tracing.
    assert not any("/health/live" in s.name for _, s in receiver.received())


def test_spans_still_batched_are_flushed_at_shutdown(service_process, database_url, receiver):
    # A schedule delay far beyond the test: only the shutdown of the provider sends them.
    proc = service_process(
        _otel_env(
            receiver, database_url, OTEL_BSP_SCHEDULE_DELAY="600000", OTEL_SERVICE_NAME="flush-test"
        )
    )
    trace_id = uuid.uuid4().hex
    with httpx.Client(base_url=proc.url) as http_client:
        traceparent = f"00-{trace_id}-{PARENT_ID}-01"
        assert http_client.get("/api/v1/sessions", headers={"traceparent": traceparent}).is_success
    time.sleep(0.3)
    assert not [s for _, s in receiver.received() if s.trace_id.hex() == trace_id]
    proc.stop()
    spans = _wait_for(receiver, trace_id, {"GET /api/v1/sessions", "list_sessions"}, timeout=5)
    assert {"GET /api/v1/sessions", "list_sessions"} <= {s.name for _, s in spans}
    assert {r["service.name"] for r, _ in spans} == {"flush-test"}


def test_exporters_follow_the_standard_variables():
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert telemetry.exporters({}) == []
    assert telemetry.exporters(endpoint) == ["otlp"]
    assert telemetry.exporters({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/v1/traces"}) == [
        "otlp"
    ]
    assert telemetry.exporters({**endpoint, "OTEL_SDK_DISABLED": "true"}) == []
    assert telemetry.exporters({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) == []
    assert telemetry.exporters({"OTEL_TRACES_EXPORTER": "console,otlp"}) == ["console", "otlp"]
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        telemetry.check({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        telemetry.check({**endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def _middleware_classes(app: Any) -> list[str]:
    names, layer = [], app.build_middleware_stack()
    while layer is not None:
        names.append(type(layer).__name__)
        layer = getattr(layer, "app", None)
    return names


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_EXPORTER": "none"},
    ],
)
async def test_without_otel_configuration_nothing_is_instrumented(
    monkeypatch, database_url, environment
):
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    app = create_app(make_settings(), dsn=database_url)
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    assert not [n for n in _middleware_classes(app) if "OpenTelemetry" in n]
    assert telemetry.connection_class() is asyncpg.Connection
    async with app_client(app) as http_client:
        assert (await http_client.get("/health/ready")).status_code == 200
        pool = app.state.services.db.pool
        async with pool.acquire() as conn:
            assert type(conn._con) is asyncpg.Connection  # the connection behind the proxy
