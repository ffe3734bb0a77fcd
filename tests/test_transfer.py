"""Export (NDJSON, streamed) and import (all or nothing) of whole sessions over HTTP."""

from __future__ import annotations

import json
import re

import httpx
import psycopg

from service.app import create_app
from tests.conftest import app_client, make_settings
from tests.support import create_database, drop_database

S = "/api/v1/sessions"
NDJSON = {"content-type": "application/x-ndjson"}
# Stored text the way a client sent it: \u0000, key order, big and odd numbers, non-BMP.
TRICKY = (
    '{"z":1,"a":{"nul":"a\\u0000b","big":123456789012345678901234567890,'
    '"neg":-18446744073709551617,"f":0.1,"e":1e300,"m":-0.0,"emoji":"\\ud83d\\ude00",'
    '"list":[3,2,1]}}'
)


async def populate(http: httpx.AsyncClient, sid: str = "tricky") -> None:
    j = {"content-type": "application/json"}
    assert (await http.post(S, json={"session_id": sid, "ttl_seconds": 86400})).status_code == 201
    for agent in ("b-agent", "a-agent"):
        body = (
            f'{{"agent_id":"{agent}","state":{TRICKY},"conversation_manager_state":'
            f'{{"__name__":"SlidingWindowConversationManager","removed_message_count":0}},'
            f'"_internal_state":{TRICKY}}}'
        )
        assert (await http.post(f"{S}/{sid}/agents", content=body, headers=j)).status_code == 201
        batch = ",".join(
            f'{{"message_id":{i},"message":{{"role":"user","content":[{{"text":"m{i}"}},'
            f'{{"json":{TRICKY}}}],"metadata":{TRICKY}}}'
            + (
                ',"redact_message":{"content":[{"text":"[redacted]"}],"role":"user"}'
                if i == 1
                else ""
            )
            + "}"
            for i in range(3)
        )
        r = await http.post(
            f"{S}/{sid}/agents/{agent}/messages/batch",
            content=f'{{"messages":[{batch}]}}',
            headers=j,
        )
        assert r.status_code == 201, r.text
    await http.put(
        f"{S}/{sid}/agents/a-agent",
        content=f'{{"state":{TRICKY},"conversation_manager_state":{{}}}}',
        headers=j,
    )  # version 2
    multi = f'{{"multi_agent_id":"graph","state":{TRICKY}}}'
    assert (await http.post(f"{S}/{sid}/multi-agents", content=multi, headers=j)).status_code == 201


async def export(http: httpx.AsyncClient, sid: str = "tricky") -> bytes:
    r = await http.get(f"{S}/{sid}/export")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return r.content


async def views(http: httpx.AsyncClient, sid: str = "tricky") -> list[bytes]:
    """Every GET of the session and what is under it, as the raw bytes answered, versions
    aside: an import gives new ones (a version is never reused)."""
    paths = [f"{S}/{sid}", f"{S}/{sid}/agents", f"{S}/{sid}/multi-agents/graph"]
    paths += [f"{S}/{sid}/agents/{a}/messages" for a in ("a-agent", "b-agent")]
    return [unversioned((await http.get(p)).content) for p in paths]


def unversioned(text: bytes) -> bytes:
    return re.sub(rb'"version":\d+', b'"version":0', text)


async def test_round_trip_into_a_fresh_database_gives_back_equal_data(
    client, admin_dsn, template_db
):
    await populate(client)
    exported = await export(client)
    records = [json.loads(line) for line in exported.splitlines()]
    assert [r["type"] for r in records] == ["session"] + ["agent"] * 2 + ["message"] * 6 + [
        "multi_agent",
        "end",
    ]
    assert records[-1] == {"type": "end", "agents": 2, "messages": 6, "multi_agents": 1}
    stored = (await client.get(f"{S}/tricky/multi-agents/graph")).content
    state = stored.split(b'"state":', 1)[1].split(b',"version"', 1)[0]
    assert b"\\u0000" in state and b"123456789012345678901234567890" in state
    assert b'"state":' + state + b',"version"' in exported  # the stored text, as stored

    dsn = create_database(admin_dsn, template_db)
    try:
        async with app_client(create_app(make_settings(), dsn=dsn)) as fresh:
            r = await fresh.post(f"{S}/import", content=exported, headers=NDJSON)
            assert r.status_code == 201, r.text
            assert r.headers["location"] == f"{S}/tricky"
            assert r.json() == (await client.get(f"{S}/tricky")).json()
            assert await views(fresh) == await views(client)  # timestamps kept
            assert unversioned(await export(fresh)) == unversioned(exported)
    finally:
        drop_database(admin_dsn, dsn)


async def test_replace_restores_the_exported_state_atomically(client):
    await populate(client)
    exported = await export(client)
    before = await views(client)
    await client.post(
        f"{S}/tricky/agents/a-agent/messages",
        json={"message_id": 9, "message": {"role": "user", "content": []}},
    )
    await client.delete(f"{S}/tricky/multi-agents/graph")
    r = await client.post(f"{S}/import", content=exported, headers=NDJSON)
    assert r.status_code == 409 and "replace=true" in r.json()["error"]["message"]
    r = await client.post(f"{S}/import?replace=true", content=exported, headers=NDJSON)
    assert r.status_code == 201, r.text
    assert await views(client) == before
    assert unversioned(await export(client)) == unversioned(exported)


def _stream(*records: dict) -> bytes:
    return b"\n".join(json.dumps(r).encode() for r in records) + b"\n"


SESSION = {"type": "session", "session_id": "imp"}
AGENT = {"type": "agent", "agent_id": "a", "state": {}, "conversation_manager_state": {}}
MESSAGE = {
    "type": "message",
    "agent_id": "a",
    "message_id": 0,
    "message": {"role": "user", "content": []},
}


BAD = [  # (stream, line, words in the message)
    (_stream(SESSION, AGENT) + b"{not json\n", 3, "not valid JSON"),
    (
        _stream(SESSION, AGENT) + b'{"type":"message","agent_id":"a","message_id":0,'
        b'"message":{"role":"user","content":[{"x":NaN}]}}\n',
        3,
        "not valid JSON: ",
    ),
    (
        _stream(SESSION, AGENT, {**MESSAGE, "message": {"role": "system", "content": []}}),
        3,
        "role must be",
    ),
    (_stream(SESSION, {**MESSAGE, "agent_id": "ghost"}), 2, "no earlier record"),
    (_stream(SESSION, AGENT, AGENT), 3, "appears twice"),
    (_stream(SESSION, AGENT, MESSAGE, MESSAGE), 4, "appears twice"),
    (_stream(AGENT, SESSION), 1, "first record must be the session"),
    (
        _stream(
            SESSION,
            {"type": "agent", "agent_id": "a/b", "state": {}, "conversation_manager_state": {}},
        ),
        2,
        "agent.agent_id",
    ),
    (_stream(SESSION, {"type": "widget"}), 2, "type must be one of"),
    (_stream(SESSION, [1]), 2, "JSON object"),  # type: ignore[arg-type]
    (
        _stream(SESSION, AGENT, {"type": "end", "agents": 1, "messages": 5, "multi_agents": 0}),
        3,
        "incomplete",
    ),
    (
        _stream(SESSION, {"type": "end", "agents": 0, "messages": 0, "multi_agents": 0}, AGENT),
        3,
        "nothing may follow",
    ),
    (b"\n\n", 2, "no records"),
    (b"", 1, "no records"),
]


async def test_a_bad_line_is_422_naming_it_and_nothing_is_stored(client):
    for body, line, words in BAD:
        r = await client.post(f"{S}/import", content=body, headers=NDJSON)
        assert r.status_code == 422, r.text
        message = r.json()["error"]["message"]
        assert message.startswith(f"line {line}: ") and words in message, message
        assert (await client.get(f"{S}/imp")).status_code == 404


async def test_media_type_size_and_expired_sessions(database_url, client):
    ok = _stream(SESSION, AGENT, MESSAGE)
    for content_type in ("application/json", "text/plain", ""):
        r = await client.post(f"{S}/import", content=ok, headers={"content-type": content_type})
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    expired = _stream({**SESSION, "expires_at": "2001-01-01T00:00:00+00:00"}, AGENT)
    r = await client.post(f"{S}/import", content=expired, headers=NDJSON)
    assert r.status_code == 422 and "expired" in r.json()["error"]["message"]
    assert (await client.get(f"{S}/imp")).status_code == 404
    small = create_app(make_settings(max_body_bytes=1024), dsn=database_url)
    async with app_client(small) as http:
        big = _stream(SESSION, {**AGENT, "state": {"x": "y" * 2000}})
        r = await http.post(f"{S}/import", content=big, headers=NDJSON)
        assert r.status_code == 413
    r = await client.post(f"{S}/import", content=ok, headers=NDJSON)  # no end record: fine
    assert r.status_code == 201 and r.json()["version"] >= 1
    agent = (await client.get(f"{S}/imp/agents/a")).json()
    assert agent["message_count"] == 1 and agent["created_at"] == agent["updated_at"]


def test_a_large_session_streams_and_round_trips(service_process, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:  # 10,000 messages, quickly
        conn.execute("INSERT INTO sessions (session_id, session_type) VALUES ('big', 'AGENT')")
        conn.execute(
            "INSERT INTO agents (session_id, agent_id, state, conversation_manager_state)"
            " VALUES ('big', 'a', '{}', '{}')"
        )
        conn.execute(
            "INSERT INTO messages (session_id, agent_id, message_id, role, content_types, message)"
            " SELECT 'big', 'a', g, 'user', '{text}', ('{\"role\":\"user\",\"content\":"
            "[{\"text\":\"' || repeat('x', 200) || g || '\"}]}')::json"
            " FROM generate_series(0, 9999) g"
        )
    proc = service_process({"DATABASE_URL": database_url})
    with httpx.Client(base_url=proc.url, timeout=60) as http:
        chunks = []
        with http.stream("GET", f"{S}/big/export") as r:
            assert r.status_code == 200
            chunks = list(r.iter_raw())
        exported = b"".join(chunks)
        assert len(chunks) > 10, len(chunks)  # streamed in pieces, not built whole
        lines = exported.splitlines()
        assert len(lines) == 1 + 1 + 10_000 + 1
        assert json.loads(lines[-1]) == {
            "type": "end",
            "agents": 1,
            "messages": 10_000,
            "multi_agents": 0,
        }
        http.delete(f"{S}/big/agents/a/messages/5")
        r = http.post(f"{S}/import?replace=true", content=exported, headers=NDJSON)
        assert r.status_code == 201, r.text
        assert unversioned(http.get(f"{S}/big/export").content) == unversioned(exported)
