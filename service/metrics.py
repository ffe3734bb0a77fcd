"""Prometheus metrics, and the one access line per request.

`MetricsMiddleware` is a pure ASGI middleware (BaseHTTPMiddleware would add a task and a
stream per request). It sits inside `RequestIdMiddleware`, so the request id is known while the
request runs. Requests are labelled by route TEMPLATE (`/api/v1/sessions/{session_id}`), never
by raw path, so ids cannot grow the number of series; unknown paths share `UNMATCHED`.

Pool, cache and retry figures live on the app's services; `Metrics.sync` copies them into
gauges and counters at every scrape. With several uvicorn workers (`PROMETHEUS_MULTIPROC_DIR`
set, which `python -m service` does itself when WORKERS > 1) a scrape reaches one worker only,
so each worker also publishes its figures every second to the shared files that
prometheus_client's multiprocess mode sums up: pool gauges add up across live workers, counters
across all workers since start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    exposition,
    multiprocess,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import logs
from service.telemetry import extend_lifespan

if TYPE_CHECKING:
    from fastapi import FastAPI

    from service.routes import Services

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)
PUBLISH_SECONDS = 1.0
POOL_FIGURES = {
    "size": "Connections the pool holds open.",
    "idle": "Open connections not in use (size - idle are in use; none idle at max: waiting).",
    "min": "Connections the pool keeps open at least.",
    "max": "Connections the pool opens at most.",
}
_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


class Metrics:
    """The metrics of one app; in multiprocess mode they are written to the shared folder."""

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        self.registry = CollectorRegistry()
        own = None if self.multiprocess_dir else self.registry
        if own is not None:  # per-process figures mean nothing summed over workers
            ProcessCollector(registry=own)
            PlatformCollector(registry=own)
            GCCollector(registry=own)
        labels = ("method", "route", "status")
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer a request.",
            labels,
            buckets=BUCKETS,
            registry=own,
        )
        self.requests = Counter("http_requests", "Requests answered.", labels, registry=own)
        self.in_flight = Gauge(
            "http_requests_in_flight",
            "Requests being answered.",
            multiprocess_mode="livesum",
            registry=own,
        )
        self.pool = {
            figure: Gauge(f"db_pool_{figure}", text, multiprocess_mode="livesum", registry=own)
            for figure, text in POOL_FIGURES.items()
        }
        self.counted = {
            "cache_hits": Counter("cache_hits", "Reads answered from the cache.", registry=own),
            "cache_misses": Counter(
                "cache_misses", "Cached reads that went to the database.", registry=own
            ),
            "db_retries": Counter(
                "db_retries", "Transactions retried after a transient database error.", registry=own
            ),
            "sessions_expired": Counter(
                "sessions_expired",
                "Expired sessions the sweeper deleted (with everything under them).",
                registry=own,
            ),
        }
        self._seen = dict.fromkeys(self.counted, 0)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # label lookups take a lock; do them once per label set
            labels = (method, route, str(status))
            children = (self.duration.labels(*labels), self.requests.labels(*labels))
            self._children[key] = children
        children[0].observe(seconds)
        children[1].inc()

    def sync(self, services: Services) -> None:
        """Copy the pool, cache and retry figures of this process into the metrics."""
        for figure, value in services.db.pool_figures().items():
            if figure in self.pool:
                self.pool[figure].set(value)
        totals = {
            "cache_hits": services.cache.hits,
            "cache_misses": services.cache.misses,
            "db_retries": services.db.retries,
            "sessions_expired": services.sweeper.deleted if services.sweeper else 0,
        }
        for name, total in totals.items():
            delta = total - self._seen[name]
            if delta > 0:
                self.counted[name].inc(delta)
            self._seen[name] = total

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition (Prometheus text, or OpenMetrics when asked for) and its type."""
        encoder, content_type = exposition.choose_encoder(accept or "")
        if self.multiprocess_dir is None:
            return encoder(self.registry), content_type
        _forget_dead_workers(Path(self.multiprocess_dir))
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return encoder(registry), content_type


def _forget_dead_workers(folder: Path) -> None:
    """Drop the live gauges of workers that died without a clean shutdown."""
    pids = {
        int(m.group(1)) for p in folder.glob("gauge_live*.db") if (m := _LIVE_FILE.match(p.name))
    }
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(folder))
        except PermissionError:
            pass  # alive, another user's


class MetricsMiddleware:
    """Times, counts and logs every HTTP request (pure ASGI)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._routes: list[Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # what the request id middleware answers when the app raises

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = logs.REQUEST_ID.set(scope.get("state", {}).get("request_id"))
        error: str | None = None
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        except Exception as exc:
            error = exc.__class__.__name__
            raise
        finally:
            self.metrics.in_flight.dec()
            seconds = perf_counter() - started
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = self._route(scope)
            self.metrics.observe(method, route, status, seconds)
            logs.access(method, route, status, seconds, error)
            # On an error the id stays set: the middleware outside logs the exception with it.
            if error is None:
                logs.REQUEST_ID.reset(token)

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None and getattr(route, "path", None):
            return str(route.path)
        # The router did not pick a route (refused before routing, unknown path, or a plain
        # Starlette route such as /openapi.json): match here, which is rare.
        for candidate in self._candidates(scope["app"].routes):
            match, _ = candidate.matches(scope)
            if match is not Match.NONE and getattr(candidate, "path", None):
                return str(candidate.path)
        return UNMATCHED

    def _candidates(self, routes: Iterable[Any]) -> list[Any]:
        if self._routes is None:
            try:  # FastAPI >= 0.137.2 nests included routers; this flattens them
                from fastapi.routing import iter_route_contexts
            except ImportError:
                self._routes = list(routes)
            else:
                self._routes = list(iter_route_contexts(list(routes)))
        return self._routes


def install(app: FastAPI) -> None:
    """Add the metrics middleware to `app` (call between the API-key and request-id ones)."""
    metrics = Metrics()
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if metrics.multiprocess_dir is None:
        return
    publishing: list[asyncio.Task[None]] = []

    async def publish() -> None:
        while True:
            metrics.sync(app.state.services)
            await asyncio.sleep(PUBLISH_SECONDS)

    async def start() -> None:
        publishing.append(asyncio.create_task(publish()))

    async def stop() -> None:
        for task in publishing:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        metrics.sync(app.state.services)
        multiprocess.mark_process_dead(os.getpid(), metrics.multiprocess_dir)

    extend_lifespan(app, before=start, after=stop)
