"""The load generator: a closed-loop HTTP/1.1 client, run as its own process.

`python -m bench.loadgen` reads one JSON spec on stdin, opens `concurrency` keep-alive
connections, each sending its next request as soon as the previous answer is complete, and writes
to stdout: `warm` when the measured window starts, `done` when it ends (the orchestrator samples
the server's CPU time at those two lines), then one line of JSON with the figures.

Spec keys:
    host, port          the server
    engine              "raw" (asyncio streams, hand-written HTTP/1.1; the default) or "httpx"
                        (`httpx.AsyncClient` with a pool of `concurrency` connections; slower,
                        kept to show how much of a client the generator has to be)
    concurrency         connections (one request in flight on each)
    duration, warmup    seconds measured, after seconds not measured
    requests            instead of a duration: stop after this many requests (no warm-up;
                        a duration given too is then a time limit)
    method, paths       connection i requests paths[i % len(paths)]
    body                null, or {"template": JSON text holding __ID__, "batch": null | n,
                        "start": first id}: each connection numbers its own messages from
                        `start` (so POST scenarios give every connection its own agent), and
                        with `batch` sends {"messages": [n messages]} with consecutive ids
    expect              statuses that count as success (others count as errors)

Figures are over the measured window only, counted by completion time: requests, rps, p50 /
p90 / p99 / max / mean latency in milliseconds, errors, statuses, and `gen_cpu`, this process's
CPU time over the window divided by its length (near 1.0 means the generator, not the server,
may be the limit on one core).
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

WARMING, MEASURING, STOPPED = 0, 1, 2


@dataclass
class Spec:
    host: str
    port: int
    concurrency: int
    method: str
    paths: list[str]
    engine: str = "raw"
    duration: float | None = 5.0
    warmup: float = 1.0
    requests: int | None = None
    body: dict[str, Any] | None = None
    expect: list[int] = field(default_factory=lambda: [200, 201])

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Spec:
        spec = cls(**data)
        if spec.body is not None and len(spec.paths) < spec.concurrency:
            raise ValueError("a body with ids needs one path (agent) per connection")
        if spec.requests is None and spec.duration is None:
            raise ValueError("give a duration or a request count")
        return spec


class Bodies:
    """Request bodies of one connection: message bodies numbered from `start`."""

    def __init__(self, template: str, batch: int | None, start: int) -> None:
        pre, post = template.encode().split(b"__ID__")
        self.pre, self.post, self.batch, self.next_id = pre, post, batch, start

    def __call__(self) -> bytes:
        if self.batch is None:
            body = self.pre + str(self.next_id).encode() + self.post
            self.next_id += 1
            return body
        ids = range(self.next_id, self.next_id + self.batch)
        self.next_id += self.batch
        parts = b",".join(self.pre + str(i).encode() + self.post for i in ids)
        return b'{"messages":[' + parts + b"]}"


class Run:
    """Shared state of one load run (all connections live on one event loop)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.phase = WARMING
        self.latencies: list[int] = []  # nanoseconds, measured window only
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self.error_sample: str | None = None
        self.issued = 0
        self.completed = 0
        self.response_bytes = 0
        self.expect = frozenset(spec.expect)
        self.finished = asyncio.Event()

    def may_start(self) -> bool:
        if self.phase == STOPPED:
            return False
        if self.spec.requests is not None:
            if self.issued >= self.spec.requests:
                return False
            self.issued += 1
        return True

    def record(self, status: int, started: int, ended: int, size: int, sample: bytes) -> None:
        if self.phase == MEASURING:
            self.latencies.append(ended - started)
            self.statuses[status] += 1
            self.response_bytes = size
            if status not in self.expect:
                self.errors += 1
                if self.error_sample is None:
                    self.error_sample = f"{status}: {sample[:300]!r}"
        if self.spec.requests is not None:
            self.completed += 1
            if self.completed >= self.spec.requests:
                self.finished.set()

    def fail(self, exc: BaseException) -> None:
        if self.phase == MEASURING:
            self.errors += 1
            if self.error_sample is None:
                self.error_sample = f"{type(exc).__name__}: {exc}"
        if self.spec.requests is not None:
            self.completed += 1
            if self.completed >= self.spec.requests:
                self.finished.set()


def _request_bytes(spec: Spec, path: str, body: bytes | None) -> bytes:
    head = f"{spec.method} {path} HTTP/1.1\r\nHost: {spec.host}:{spec.port}\r\n"
    if body is None:
        return (head + "\r\n").encode()
    return (
        head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _raw_connection(run: Run, index: int) -> None:
    """One keep-alive connection: write a request, read the answer (Content-Length framed)."""
    spec = run.spec
    path = spec.paths[index % len(spec.paths)]
    bodies = None
    if spec.body is not None:
        bodies = Bodies(spec.body["template"], spec.body.get("batch"), spec.body.get("start", 0))
    fixed = _request_bytes(spec, path, None) if bodies is None else b""
    reader = writer = None
    while run.may_start():
        data = fixed if bodies is None else _request_bytes(spec, path, bodies())
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(spec.host, spec.port, limit=2**22)
            assert reader is not None
            started = time.perf_counter_ns()
            writer.write(data)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at < 0:
                raise RuntimeError(f"answer without Content-Length: {head[:200]!r}")
            end = lower.index(b"\r\n", at + 2)
            body = await reader.readexactly(int(lower[at + 17 : end]))
            ended = time.perf_counter_ns()
            run.record(status, started, ended, len(head) + len(body), body)
            if b"\r\nconnection: close" in lower:
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError) as exc:
            run.fail(exc)
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.05)
    if writer is not None:
        writer.close()


async def _httpx_connection(run: Run, index: int, client: Any) -> None:
    """The same loop over a shared `httpx.AsyncClient` (its pool holds one connection each)."""
    spec = run.spec
    path = spec.paths[index % len(spec.paths)]
    bodies = None
    if spec.body is not None:
        bodies = Bodies(spec.body["template"], spec.body.get("batch"), spec.body.get("start", 0))
    headers = {} if bodies is None else {"Content-Type": "application/json"}
    while run.may_start():
        content = None if bodies is None else bodies()
        try:
            started = time.perf_counter_ns()
            response = await client.request(spec.method, path, content=content, headers=headers)
            ended = time.perf_counter_ns()
            run.record(
                response.status_code, started, ended, len(response.content), response.content
            )
        except Exception as exc:  # any transport error counts, the run goes on
            run.fail(exc)
            await asyncio.sleep(0.05)


def _signal(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _percentile(ordered: list[int], fraction: float) -> float:
    if not ordered:
        return float("nan")
    rank = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))  # nearest rank
    return ordered[rank] / 1e6


async def run_load(spec: Spec) -> dict[str, Any]:
    """Drive the load described by `spec`; the figures of the measured window."""
    run = Run(spec)
    client = None
    if spec.engine == "httpx":
        import httpx

        limits = httpx.Limits(
            max_connections=spec.concurrency, max_keepalive_connections=spec.concurrency
        )
        client = httpx.AsyncClient(
            base_url=f"http://{spec.host}:{spec.port}", limits=limits, timeout=60.0
        )
        tasks = [
            asyncio.create_task(_httpx_connection(run, i, client)) for i in range(spec.concurrency)
        ]
    elif spec.engine == "raw":
        tasks = [asyncio.create_task(_raw_connection(run, i)) for i in range(spec.concurrency)]
    else:
        raise ValueError(f"unknown engine {spec.engine!r}")

    if spec.requests is None:
        assert spec.duration is not None
        await asyncio.sleep(spec.warmup)
    run.phase = MEASURING
    _signal("warm")
    t0, cpu0 = time.perf_counter(), time.process_time()
    timed_out = False
    if spec.requests is None:
        assert spec.duration is not None
        await asyncio.sleep(spec.duration)
    else:  # a duration given along with a request count is a time limit
        try:
            await asyncio.wait_for(run.finished.wait(), spec.duration)
        except TimeoutError:
            timed_out = True
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    run.phase = STOPPED
    _signal("done")
    await asyncio.gather(*tasks, return_exceptions=True)
    if client is not None:
        await client.aclose()

    ordered = sorted(run.latencies)
    count = len(ordered)
    return {
        "engine": spec.engine,
        "concurrency": spec.concurrency,
        "requests": count,
        "seconds": round(seconds, 4),
        "rps": round(count / seconds, 1) if seconds else 0.0,
        "p50_ms": round(_percentile(ordered, 0.50), 4),
        "p90_ms": round(_percentile(ordered, 0.90), 4),
        "p99_ms": round(_percentile(ordered, 0.99), 4),
        "max_ms": round(ordered[-1] / 1e6, 4) if ordered else float("nan"),
        "mean_ms": round(sum(ordered) / count / 1e6, 4) if count else float("nan"),
        "errors": run.errors,
        "error_sample": run.error_sample,
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "response_bytes": run.response_bytes,
        "gen_cpu": round(cpu / seconds, 3) if seconds else 0.0,
        "timed_out": timed_out,
    }


def main() -> int:
    spec = Spec.from_json(json.loads(sys.stdin.read()))
    try:
        import uvloop  # the same loop the server runs on; the generator needs the speed
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        result = asyncio.run(run_load(spec))
    else:
        result = uvloop.run(run_load(spec))
    _signal(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
