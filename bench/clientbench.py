"""Figures seen through the Strands client, `strands_session_client.HTTPSessionRepository`.

- `create_message`: the median of N sequential calls (one Strands turn appends one message).
- restore: `list_messages(session_id, agent_id)` with `limit=None`, what a Strands agent does on
  start-up, for every history given (agent -> size); the median of a few runs. It is one
  NDJSON stream (docs/api.md, "Streaming a message list").
- the same stream over plain httpx, read whole and parsed as one array by pydantic-core: what of
  a restore is the server and the transfer, what is building Strands objects;
- the pages (1,000 each) over plain httpx, parsed by orjson and by `json`: the path a restore
  with a limit, or against a service without streams, takes;
- the floor round trip: the same sequential POST of the same body through a bare `httpx.Client`
  to the framework floor's POST route; with the raw insert it is the client-create floor.

If the client cannot be imported (it is written concurrently), `measure` says so in its result
instead of failing the run.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import httpx
import orjson
import pydantic_core


def _message(text: str, message_id: int) -> Any:
    from strands.types.session import SessionMessage

    return SessionMessage(
        message={"role": "user", "content": [{"text": text}]}, message_id=message_id
    )


def measure(
    base_url: str,
    session_id: str,
    agent_id: str,
    text: str,
    histories: dict[str, int],
    samples: int,
    restores: int,
) -> dict[str, Any]:
    """Client figures against the service at `base_url`; `agent_id` is created here."""
    try:
        from strands.types.session import Session, SessionAgent, SessionType
        from strands_session_client import HTTPSessionRepository
    except ImportError as exc:
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}

    out: dict[str, Any] = {"available": True, "samples": samples, "restores": restores}
    with HTTPSessionRepository(base_url=base_url) as repo:
        if repo.read_session(session_id) is None:
            repo.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
        repo.create_agent(
            session_id,
            SessionAgent(
                agent_id=agent_id,
                state={},
                conversation_manager_state={
                    "__name__": "SlidingWindowConversationManager",
                    "removed_message_count": 0,
                },
            ),
        )
        warmup = max(5, samples // 10)
        for message_id in range(warmup):
            repo.create_message(session_id, agent_id, _message(text, message_id))
        times = []
        for message_id in range(warmup, warmup + samples):
            message = _message(text, message_id)  # built outside the timed call
            started = time.perf_counter()
            repo.create_message(session_id, agent_id, message)
            times.append(time.perf_counter() - started)
        out["create_message_median_ms"] = statistics.median(times) * 1000
        out["create_message_p90_ms"] = sorted(times)[int(0.9 * len(times))] * 1000

        for history, size in histories.items():
            repo.list_messages(session_id, history)  # warm: connections, statement cache
            times = []
            for _ in range(restores):
                started = time.perf_counter()
                messages = repo.list_messages(session_id, history, limit=None)
                times.append(time.perf_counter() - started)
                if len(messages) != size:
                    raise RuntimeError(f"restore of {history}: {len(messages)} != {size}")
            out[f"restore_{size}_s"] = statistics.median(times)
        # Where a restore's time goes: the same pages over plain httpx, parsed by orjson and by
        # the standard library's json, without building Strands objects.
    # One client, built and warmed outside the timing (building one costs ~40 ms of TLS set-up).
    with httpx.Client(base_url=base_url, timeout=60.0) as http:
        for history, size in histories.items():
            _stream(http, session_id, history, size)
            times = []
            for _ in range(restores):
                started = time.perf_counter()
                _stream(http, session_id, history, size)
                times.append(time.perf_counter() - started)
            out[f"stream_{size}_s"] = statistics.median(times)
            _pages(http, session_id, history, orjson.loads, size)
            for parser, parse in (("orjson", orjson.loads), ("json", json.loads)):
                times = []
                for _ in range(restores):
                    started = time.perf_counter()
                    _pages(http, session_id, history, parse, size)
                    times.append(time.perf_counter() - started)
                out[f"pages_{size}_{parser}_s"] = statistics.median(times)
    return out


def _stream(http: httpx.Client, session_id: str, agent_id: str, size: int) -> None:
    """An agent's messages as one NDJSON stream, read whole, its lines parsed as one array."""
    path = f"/api/v1/sessions/{session_id}/agents/{agent_id}/messages"
    body = http.get(path, headers={"Accept": "application/x-ndjson"}).content.rstrip(b"\n")
    count = len(pydantic_core.from_json(b"[" + body.replace(b"\n", b",") + b"]"))
    if count != size:
        raise RuntimeError(f"stream of {agent_id}: {count} != {size}")


def _pages(http: httpx.Client, session_id: str, agent_id: str, parse: Any, size: int) -> None:
    """Every page of an agent's messages (1,000 a page), each answer parsed with `parse`."""
    path = f"/api/v1/sessions/{session_id}/agents/{agent_id}/messages"
    count, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor is not None:
            params["cursor"] = cursor
        page = parse(http.get(path, params=params).content)
        count += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    if count != size:
        raise RuntimeError(f"pages of {agent_id}: {count} != {size}")


def floor_round_trip(floor_url: str, body: bytes, samples: int) -> float:
    """Median milliseconds of a sequential POST of `body` to the floor, through httpx.Client."""
    path = "/api/v1/sessions/floor/agents/floor/messages"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    with httpx.Client(base_url=floor_url) as client:
        for _ in range(max(5, samples // 10)):
            client.post(path, content=body, headers=headers)
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            response = client.post(path, content=body, headers=headers)
            times.append(time.perf_counter() - started)
            response.raise_for_status()
    return statistics.median(times) * 1000
