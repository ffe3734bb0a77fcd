"""Prometheus metrics, and the one access line per request.

`service.edge.RequestEdge`, the outermost middleware, times and counts every request here and
writes its access line. Requests are labelled by route TEMPLATE (`/api/v1/sessions/{session_id}`),
never by raw path, so ids cannot grow the number of series; unknown paths share `UNMATCHED`.

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
from pathlib import Path
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


def install(app: FastAPI) -> Metrics:
    """The metrics of `app` (`app.state.metrics`; `service.edge.RequestEdge` records them), and
    in multiprocess mode their publication while the app runs."""
    metrics = Metrics()
    app.state.metrics = metrics
    if metrics.multiprocess_dir is None:
        return metrics
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
    return metrics
