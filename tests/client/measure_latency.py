"""Measure what an agent waits for: client-observed `create_message` latency and restore time.

    python tests/client/measure_latency.py --url http://127.0.0.1:8000 [--api-key KEY]

Creates a throw-away session, times `--appends` single `create_message` calls (one keep-alive
connection, as during a conversation), then times `--restores` restores of a 1,000-message
history: `list_messages` alone, and a whole Strands `Agent` restore via `HTTPSessionManager`,
and a few `list_messages` of a 10,000-message history. Prints medians and p95s, then deletes the
session.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import httpx
from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType
from strands_session_client import HTTPSessionManager, HTTPSessionRepository


def _message(message_id: int) -> SessionMessage:
    role = ("user", "assistant")[message_id % 2]
    text = f"message {message_id}: " + "lorem ipsum dolor sit amet " * 8
    return SessionMessage({"role": role, "content": [{"text": text}]}, message_id)


def _summary(label: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return (
        f"{label}: median {statistics.median(ordered) * 1000:.2f} ms, "
        f"p95 {p95 * 1000:.2f} ms, n={len(ordered)}"
    )


def _seed(url: str, api_key: str | None, session_id: str, agent_id: str, count: int) -> None:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    path = f"/api/v1/sessions/{session_id}/agents/{agent_id}/messages/batch"
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for start in range(0, count, 1000):
            batch = [_message(i).to_dict() for i in range(start, min(start + 1000, count))]
            http.post(path, json={"messages": batch}).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the service's base URL")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--appends", type=int, default=500, help="create_message calls to time")
    parser.add_argument("--restores", type=int, default=20, help="1,000-message restores to time")
    parser.add_argument("--long-restores", type=int, default=5, help="10,000-message listings")
    args = parser.parse_args()

    session_id = f"measure-{uuid.uuid4().hex[:12]}"
    with HTTPSessionRepository(args.url, api_key=args.api_key) as repo:
        repo.create_session(Session(session_id, SessionType.AGENT))
        repo.create_agent(session_id, SessionAgent("writer", {}, {}))
        for i in range(20):  # warm-up: connection, server caches and plans
            repo.create_message(session_id, "writer", _message(i))
        appends = []
        for i in range(20, 20 + args.appends):
            started = time.perf_counter()
            repo.create_message(session_id, "writer", _message(i))
            appends.append(time.perf_counter() - started)

        manager_state = SlidingWindowConversationManager().get_state()
        repo.create_agent(session_id, SessionAgent("reader", {}, manager_state))
        _seed(args.url, args.api_key, session_id, "reader", 1000)
        repo.list_messages(session_id, "reader")  # warm-up
        listings = []
        for _ in range(args.restores):
            started = time.perf_counter()
            restored = repo.list_messages(session_id, "reader")
            listings.append(time.perf_counter() - started)
            assert len(restored) == 1000

        agent_restores = []
        for _ in range(args.restores):
            started = time.perf_counter()
            manager = HTTPSessionManager(session_id, args.url, api_key=args.api_key)
            agent = Agent(agent_id="reader", session_manager=manager, callback_handler=None)
            agent_restores.append(time.perf_counter() - started)
            assert len(agent.messages) == 1000
            manager.close()
        repo.create_agent(session_id, SessionAgent("archive", {}, manager_state))
        _seed(args.url, args.api_key, session_id, "archive", 10_000)
        long_listings = []
        for _ in range(args.long_restores):
            started = time.perf_counter()
            assert len(repo.list_messages(session_id, "archive")) == 10_000
            long_listings.append(time.perf_counter() - started)
        repo.delete_session(session_id)

    print(_summary("create_message", appends))
    print(_summary("list_messages, 1,000 messages", listings))
    print(_summary("Agent restore (HTTPSessionManager + Agent), 1,000 messages", agent_restores))
    print(_summary("list_messages, 10,000 messages", long_listings))


if __name__ == "__main__":
    main()
