"""The fault drill: every write route through a proxy that loses the database's answer.

A real `python -m service` talks to PostgreSQL through `tests.faults.PgProxy`. For each write
route, the proxy lets the write's statement (or the COMMIT of its transaction) run and drops the
reply, closing the connection (`after`), or closes the connection before the statement is sent
(`before`). Triggers count what was applied (committed rows only). Every round checks:

- the write was applied exactly once;
- the answer is the write's outcome (its status, and a body equal to what a GET returns), or a
  503 with Retry-After and the Idempotency-Key to retry with;
- a repeat with the same Idempotency-Key answers the same status and body, applying nothing.

The figures (faults injected, writes applied twice, wrong answers) are printed at the end:
`.venv/bin/python -m pytest tests/test_faults.py -q -s`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from service.queries import Q
from tests.faults import PgProxy
from tests.support import ServiceProcess, create_database, drop_database

S = "/api/v1/sessions"
ROUNDS = 2
AUDIT = """
CREATE TABLE test_audit (tbl text NOT NULL, op text NOT NULL, scope text);
CREATE FUNCTION test_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
    INSERT INTO test_audit VALUES (TG_TABLE_NAME, TG_OP, coalesce(r->>'session_id', r->>'key'));
    RETURN NULL;
END $$;
"""
TABLES = ("sessions", "agents", "messages", "multi_agents", "storage_objects", "session_leases")
FIGURES = {"faults injected": 0, "writes applied twice": 0, "wrong answers": 0, "503s": 0}


@pytest.fixture(scope="module")
def drill(admin_dsn: str, template_db: str, tmp_path_factory) -> Iterator[Drill]:
    dsn = create_database(admin_dsn, template_db, prefix="sbt_drill")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(AUDIT)  # type: ignore[arg-type]
        for table in TABLES:
            conn.execute(
                f"CREATE TRIGGER {table}_audit AFTER INSERT OR UPDATE OR DELETE ON {table} "  # type: ignore[arg-type]
                "FOR EACH ROW EXECUTE FUNCTION test_audit()"
            )
    upstream = urlsplit(admin_dsn)
    proxy = PgProxy(upstream.port or 5432, upstream.hostname or "127.0.0.1")
    proxy.start()
    name = urlsplit(dsn).path.lstrip("/")
    log = tmp_path_factory.mktemp("drill") / "service.log"
    env = {
        "DATABASE_URL": proxy.dsn(name),
        "MIGRATE_ON_START": "false",
        "SWEEP_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    service = ServiceProcess(env, log)
    try:
        service.wait_ready()
        with httpx.Client(base_url=service.url, timeout=30) as http:
            yield Drill(http, proxy, dsn, service)
    finally:
        service.stop()
        proxy.stop()
        drop_database(admin_dsn, dsn)


@dataclass
class Drill:
    http: httpx.Client
    proxy: PgProxy
    dsn: str
    service: ServiceProcess

    def applied(self, table: str, op: str, scope: str) -> int:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM test_audit WHERE tbl = %s AND op = %s AND scope = %s",
                (table, op, scope),
            ).fetchone()
        assert row is not None
        return int(row[0])


# --- the write routes --------------------------------------------------------------------------


def agent(**state: Any) -> dict[str, Any]:
    return {"agent_id": "a", "state": state, "conversation_manager_state": {}}


def message(i: int, text: str = "hi") -> dict[str, Any]:
    return {"message_id": i, "message": {"role": "user", "content": [{"text": text}]}}


def ndjson(sid: str) -> bytes:
    lines = [
        f'{{"type":"session","session_id":"{sid}","session_type":"AGENT"}}',
        '{"type":"agent","agent_id":"a","state":{},"conversation_manager_state":{}}',
        '{"type":"message","agent_id":"a","message_id":0,'
        '"message":{"role":"user","content":[{"text":"x"}]}}',
    ]
    return ("\n".join(lines) + "\n").encode()


def with_session(http: httpx.Client, sid: str) -> dict[str, str]:
    return {"etag": http.post(S, json={"session_id": sid}).headers["etag"]}


def with_agent(http: httpx.Client, sid: str) -> dict[str, str]:
    with_session(http, sid)
    return {"etag": http.post(f"{S}/{sid}/agents", json=agent()).headers["etag"]}


def with_message(http: httpx.Client, sid: str) -> dict[str, str]:
    with_agent(http, sid)
    return {"etag": http.post(f"{S}/{sid}/agents/a/messages", json=message(0)).headers["etag"]}


def with_multi_agent(http: httpx.Client, sid: str) -> dict[str, str]:
    with_session(http, sid)
    body = {"multi_agent_id": "g", "state": {"v": 1}}
    return {"etag": http.post(f"{S}/{sid}/multi-agents", json=body).headers["etag"]}


def with_lease(http: httpx.Client, sid: str) -> dict[str, str]:
    with_session(http, sid)
    lease = http.post(f"{S}/{sid}/lease", json={"holder": "h", "ttl_seconds": 60}).json()
    return {"lease": str(lease["token"])}


def with_object(http: httpx.Client, sid: str) -> dict[str, str]:
    http.put(f"/api/v1/storage/objects/drill/{sid}", content=b"old", headers=OCTETS)
    return {}


OCTETS = {"content-type": "application/octet-stream"}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str  # formatted with sid
    statement: str  # the named query whose reply is lost, or COMMIT
    table: str
    op: str
    status: int
    setup: Callable[[httpx.Client, str], dict[str, str]] | None = None
    json: Callable[[str], Any] | None = None
    content: Callable[[str], bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    if_match: bool = False
    read: str | None = None  # GET whose body the answer must equal
    count: int = 1  # rows one application writes to `table`


CASES = [
    Case("create session", "POST", S, "COMMIT", "sessions", "INSERT", 201,
         json=lambda sid: {"session_id": sid}, read=S + "/{sid}"),
    Case("update session", "PUT", S + "/{sid}", "update_session", "sessions", "UPDATE", 200,
         setup=with_session, json=lambda sid: {}, read=S + "/{sid}"),
    Case("update session, If-Match", "PUT", S + "/{sid}", "update_session", "sessions",
         "UPDATE", 200, setup=with_session, json=lambda sid: {}, if_match=True,
         read=S + "/{sid}"),
    Case("delete session", "DELETE", S + "/{sid}", "delete_session", "sessions", "DELETE", 204,
         setup=with_session),
    Case("create agent", "POST", S + "/{sid}/agents", "create_agent", "agents", "INSERT", 201,
         setup=with_session, json=lambda sid: agent(), read=S + "/{sid}/agents/a"),
    Case("update agent", "PUT", S + "/{sid}/agents/a", "update_agent", "agents", "UPDATE", 200,
         setup=with_agent, json=lambda sid: agent(v=2), read=S + "/{sid}/agents/a"),
    Case("update agent, If-Match", "PUT", S + "/{sid}/agents/a", "update_agent", "agents",
         "UPDATE", 200, setup=with_agent, json=lambda sid: agent(v=2), if_match=True,
         read=S + "/{sid}/agents/a"),
    Case("delete agent", "DELETE", S + "/{sid}/agents/a", "delete_agent", "agents", "DELETE",
         204, setup=with_agent),
    Case("append message", "POST", S + "/{sid}/agents/a/messages", "create_message",
         "messages", "INSERT", 201, setup=with_agent, json=lambda sid: message(0),
         read=S + "/{sid}/agents/a/messages/0"),
    Case("update message, If-Match", "PUT", S + "/{sid}/agents/a/messages/0", "update_message",
         "messages", "UPDATE", 200, setup=with_message, json=lambda sid: message(0, "new"),
         if_match=True, read=S + "/{sid}/agents/a/messages/0"),
    Case("delete message", "DELETE", S + "/{sid}/agents/a/messages/0", "delete_message",
         "messages", "DELETE", 204, setup=with_message),
    Case("batch append", "POST", S + "/{sid}/agents/a/messages/batch", "COMMIT", "messages",
         "INSERT", 201, setup=with_agent,
         json=lambda sid: {"messages": [message(i) for i in range(3)]}, count=3),
    Case("create multi-agent", "POST", S + "/{sid}/multi-agents", "create_multi_agent",
         "multi_agents", "INSERT", 201, setup=with_session,
         json=lambda sid: {"multi_agent_id": "g", "state": {"v": 1}},
         read=S + "/{sid}/multi-agents/g"),
    Case("update multi-agent", "PUT", S + "/{sid}/multi-agents/g", "update_multi_agent",
         "multi_agents", "UPDATE", 200, setup=with_multi_agent,
         json=lambda sid: {"state": {"v": 2}}, read=S + "/{sid}/multi-agents/g"),
    Case("delete multi-agent, If-Match", "DELETE", S + "/{sid}/multi-agents/g",
         "delete_multi_agent", "multi_agents", "DELETE", 204, setup=with_multi_agent,
         if_match=True),
    Case("storage put", "PUT", "/api/v1/storage/objects/drill/{sid}", "write_object",
         "storage_objects", "UPDATE", 204, setup=with_object, content=lambda sid: b"new",
         headers=OCTETS),
    Case("storage delete", "DELETE", "/api/v1/storage/objects/drill/{sid}", "delete_object",
         "storage_objects", "DELETE", 204, setup=with_object),
    Case("import", "POST", S + "/import", "COMMIT", "sessions", "INSERT", 201,
         content=ndjson, headers={"content-type": "application/x-ndjson"}, read=S + "/{sid}"),
    Case("turn", "POST", S + "/{sid}/agents/a/turn", "COMMIT", "messages", "INSERT", 201,
         setup=with_agent, json=lambda sid: {"messages": [message(0), message(1)],
                                             "agent": {"state": {"v": 2},
                                                       "conversation_manager_state": {}}},
         count=2),
    Case("acquire lease", "POST", S + "/{sid}/lease", "acquire_lease", "session_leases",
         "INSERT", 201, setup=with_session, json=lambda sid: {"holder": "h", "ttl_seconds": 60}),
    Case("renew lease", "PUT", S + "/{sid}/lease", "renew_lease", "session_leases", "UPDATE",
         200, setup=with_lease, json=lambda sid: {"holder": "h", "ttl_seconds": 90}),
    Case("release lease", "DELETE", S + "/{sid}/lease", "release_lease", "session_leases",
         "DELETE", 204, setup=with_lease),
]  # fmt: skip


def send(drill: Drill, case: Case, sid: str, headers: dict[str, str]) -> httpx.Response:
    return drill.http.request(
        case.method,
        case.path.format(sid=sid),
        json=case.json(sid) if case.json else None,
        content=case.content(sid) if case.content else None,
        headers={**case.headers, **headers},
    )


def scope(case: Case, sid: str) -> str:
    return f"drill/{sid}" if case.table == "storage_objects" else sid


def check_answer(drill: Drill, case: Case, sid: str, r: httpx.Response) -> bool:
    """True for the write's outcome, False for a 503; anything else is a wrong answer."""
    if r.status_code == 503:
        FIGURES["503s"] += 1
        assert r.headers.get("retry-after"), r.text
        assert r.headers.get("idempotency-key"), r.text
        assert "same Idempotency-Key" in r.json()["error"]["message"]
        return False
    if r.status_code != case.status:
        FIGURES["wrong answers"] += 1
        pytest.fail(f"{case.name}: answered {r.status_code} {r.text}; expected {case.status}")
    if case.read is not None:
        stored = drill.http.get(case.read.format(sid=sid))
        assert r.json() == stored.json(), (r.text, stored.text)
        assert r.headers["etag"] == stored.headers["etag"]
    return True


@pytest.mark.parametrize("client_key", [True, False], ids=["client key", "no key"])
@pytest.mark.parametrize("mode", ["after", "before"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("round_", range(ROUNDS), ids=[f"round{i}" for i in range(ROUNDS)])
def test_a_lost_answer_never_applies_a_write_twice(
    drill: Drill, case: Case, mode: str, client_key: bool, round_: int
) -> None:
    sid = f"d-{uuid.uuid4().hex[:12]}"
    headers: dict[str, str] = {}
    if case.setup is not None:
        made = case.setup(drill.http, sid)
        if case.if_match:
            headers["If-Match"] = made["etag"]
        if "lease" in made:  # the lease routes name their lease by its token
            headers["X-Session-Lease"] = made["lease"]
    if client_key:
        headers["Idempotency-Key"] = f"k-{uuid.uuid4()}"
    before = drill.applied(case.table, case.op, scope(case, sid))
    fired = drill.proxy.injected
    statement = "COMMIT" if case.statement == "COMMIT" else Q[case.statement]
    drill.proxy.arm(statement, mode)
    try:
        first = send(drill, case, sid, headers)
    finally:
        assert drill.proxy.disarm() == 0, "the fault did not fire"
    assert drill.proxy.injected == fired + 1
    FIGURES["faults injected"] += 1

    answered = check_answer(drill, case, sid, first)
    applied = drill.applied(case.table, case.op, scope(case, sid)) - before
    if applied > case.count:
        FIGURES["writes applied twice"] += 1
    # A 503 may leave the write undone; the retry below must then do it, once.
    assert applied == (case.count if answered else applied) and applied in (0, case.count)

    key = headers.get("Idempotency-Key") or first.headers.get("idempotency-key")
    if key is None:
        return  # answered 2xx to a request without a key: nothing to repeat it with
    again = send(drill, case, sid, {**headers, "Idempotency-Key": key})
    assert check_answer(drill, case, sid, again), again.text
    if answered:
        assert again.content == first.content
        assert again.headers.get("etag") == first.headers.get("etag")
    assert drill.applied(case.table, case.op, scope(case, sid)) - before == case.count


def test_the_drill_figures(drill: Drill, capsys: pytest.CaptureFixture[str]) -> None:
    assert FIGURES["faults injected"] >= len(CASES) * 4 * ROUNDS
    assert FIGURES["writes applied twice"] == 0 and FIGURES["wrong answers"] == 0
    with capsys.disabled():
        print("\nfault drill: " + ", ".join(f"{k}: {v}" for k, v in FIGURES.items()))
