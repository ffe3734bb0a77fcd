"""Figures seen through the Strands client, `strands_session_client.HTTPSessionRepository`.

- `create_message`: the median of N sequential calls (one Strands turn appends one message).
- restore: `list_messages(session_id, agent_id)` with `limit=None`, what a Strands agent does on
  start-up, for every history given (agent -> size); the median of a few runs.
- the floor round trip: the same sequential POST of the same body through a bare `httpx.Client`
  to the framework floor's POST route; with the raw insert it is the client-create floor.

If the client cannot be imported (it is written concurrently), `measure` says so in its result
instead of failing the run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx


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
    return out


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
