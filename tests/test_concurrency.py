"""Many clients writing the same thing at once, through real parallel connections to a real
`python -m service` process: one 201, the rest 200 or 409, never a 500 or a duplicate."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import psycopg
import pytest

S = "/api/v1/sessions"
N = 24


@pytest.fixture
def server(service_process, database_url):
    return service_process({"DATABASE_URL": database_url, "DB_POOL_MAX_SIZE": "8"})


async def burst(url: str, requests: list[tuple[str, str, dict]]) -> list[httpx.Response]:
    """Send every request at once, each on its own connection."""
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        return await asyncio.gather(*(http.request(m, p, json=b) for m, p, b in requests))


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def count_rows(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


async def test_identical_creates_give_one_201_and_200s(server, database_url):
    body = {"session_id": "same", "session_type": "AGENT"}
    got = await burst(server.url, [("POST", S, body)] * N)
    assert statuses(got) == Counter({201: 1, 200: N - 1})
    assert len({r.text for r in got}) == 1  # every answer is the stored resource
    assert count_rows(database_url, "SELECT count(*) FROM sessions") == 1


async def test_conflicting_creates_give_one_winner_and_409s(server, database_url):
    await burst(server.url, [("POST", S, {"session_id": "s"})])
    agents = [
        (
            "POST",
            f"{S}/s/agents",
            {"agent_id": "a", "state": {"v": i % 2}, "conversation_manager_state": {}},
        )
        for i in range(N)
    ]
    got = await burst(server.url, agents)
    counts = statuses(got)
    assert counts[201] == 1 and 500 not in counts
    winner = next(r for r in got if r.status_code == 201).json()["state"]["v"]
    for request, response in zip(agents, got, strict=True):
        expected = {201, 200} if request[2]["state"]["v"] == winner else {409}
        assert response.status_code in expected
    assert count_rows(database_url, "SELECT count(*) FROM agents") == 1


async def test_concurrent_message_appends_never_duplicate(server, database_url):
    await burst(server.url, [("POST", S, {"session_id": "s"})])
    await burst(
        server.url,
        [
            (
                "POST",
                f"{S}/s/agents",
                {"agent_id": "a", "state": {}, "conversation_manager_state": {}},
            )
        ],
    )
    messages = [
        (
            "POST",
            f"{S}/s/agents/a/messages",
            {"message_id": i % 4, "message": {"role": "user", "content": [{"text": f"m{i % 4}"}]}},
        )
        for i in range(N)
    ]
    batch = [
        (
            "POST",
            f"{S}/s/agents/a/messages/batch",
            {
                "messages": [
                    {"message_id": j, "message": {"role": "user", "content": [{"text": f"m{j}"}]}}
                    for j in range(8)
                ]
            },
        )
    ] * 4
    got = await burst(server.url, messages + batch)
    counts = statuses(got)
    assert set(counts) <= {200, 201} and counts[201] >= 4
    assert count_rows(database_url, "SELECT count(*) FROM messages") == 8
    listed = await burst(server.url, [("GET", f"{S}/s/agents/a/messages", None)])
    assert [m["message_id"] for m in listed[0].json()["items"]] == list(range(8))


async def test_concurrent_puts_with_if_match_let_exactly_one_win(server):
    await burst(server.url, [("POST", S, {"session_id": "s"})])
    created = await burst(
        server.url,
        [
            (
                "POST",
                f"{S}/s/agents",
                {"agent_id": "a", "state": {}, "conversation_manager_state": {}},
            )
        ],
    )
    first = created[0].headers["etag"]
    limits = httpx.Limits(max_connections=N)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as http:
        got = await asyncio.gather(
            *(
                http.put(
                    f"{S}/s/agents/a",
                    headers={"If-Match": first},
                    json={"state": {"writer": i}, "conversation_manager_state": {}},
                )
                for i in range(N)
            )
        )
        assert statuses(got) == Counter({200: 1, 412: N - 1})
        won = next(r for r in got if r.status_code == 200)
        final = await http.get(f"{S}/s/agents/a")
        assert final.json()["state"] == won.json()["state"]
        assert final.headers["etag"] == won.headers["etag"] != first
