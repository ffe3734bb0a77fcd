"""Server time of a 100-message conversation page of the session browser.

    .venv/bin/python tests/ui/measure_page.py [--admin-dsn DSN] [--requests 300]

Starts a real `python -m service` on a fresh database, stores one agent's conversation of 100
messages (text, tool calls and results, an image every tenth message, a redaction), then asks
for its page (`/ui/sessions/…/agents/…`, 100 messages) over one keep-alive connection. Prints
the median and p95 of the server time the page reports in `Server-Timing` (`app`: queries and
rendering from the handler's start; `render`: the template alone), and of the time the client
saw. Drops the database.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from service import migrate
from tests.support import create_database, drop_database
from tests.ui.ui_data import CMS, S, encoded, png, start_service

_TIMING = re.compile(r"(app|render);dur=([\d.]+)")


def _messages(count: int = 100) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(count):
        if i % 4 == 1:
            content: list[dict[str, Any]] = [
                {"text": f"Step {i}: calling a tool."},
                {"toolUse": {"toolUseId": f"t{i}", "name": "search", "input": {"q": f"q{i}"}}},
            ]
        elif i % 4 == 2:
            result = {"hits": [{"title": f"hit {j}", "score": j / 10} for j in range(5)]}
            content = [
                {
                    "toolResult": {
                        "toolUseId": f"t{i - 1}",
                        "status": "success",
                        "content": [{"json": result}],
                    }
                }
            ]
        elif i % 10 == 3:
            content = [{"image": {"format": "png", "source": {"bytes": encoded(png(32, 32))}}}]
        else:
            content = [{"text": f"Message {i}.\n" + "Some prose of an ordinary length. " * 6}]
        role = "assistant" if i % 4 == 1 or i % 10 == 3 else "user"
        message: dict[str, Any] = {"message_id": i, "message": {"role": role, "content": content}}
        if i == 50:
            message["redact_message"] = {"role": role, "content": [{"text": "[REDACTED]"}]}
        out.append(message)
    return out


def _summary(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return (
        f"{label}: median {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms, n={len(ordered)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    dsn = create_database(args.admin_dsn, prefix="sbt_uimeasure")
    try:
        migrate.apply(dsn)
        log = Path(tempfile.mkdtemp()) / "service.log"
        service = start_service(dsn, log, LOG_LEVEL="WARNING")
        try:
            with httpx.Client(base_url=service.url) as http:
                http.post(S, json={"session_id": "measure", "session_type": "AGENT"})
                http.post(
                    f"{S}/measure/agents",
                    json={"agent_id": "a", "state": {}, "conversation_manager_state": CMS},
                ).raise_for_status()
                http.post(
                    f"{S}/measure/agents/a/messages/batch", json={"messages": _messages()}
                ).raise_for_status()
                url = "/ui/sessions/measure/agents/a?limit=100"
                first = http.get(url)
                assert first.status_code == 200 and first.text.count('class="msg ') == 100
                for _ in range(20):  # warm the pool's statement cache and the code paths
                    http.get(url)
                server, render, client = [], [], []
                for _ in range(args.requests):
                    started = time.perf_counter()
                    r = http.get(url)
                    client.append((time.perf_counter() - started) * 1000)
                    timings = dict(_TIMING.findall(r.headers["server-timing"]))
                    server.append(float(timings["app"]))
                    render.append(float(timings["render"]))
                print(f"100-message conversation page, {len(first.content)} bytes of HTML")
                print(_summary("server time (Server-Timing app)", server))
                print(_summary("  of which the template (render)", render))
                print(_summary("client-observed time", client))
        finally:
            service.stop()
    finally:
        drop_database(args.admin_dsn, dsn)


if __name__ == "__main__":
    main()
