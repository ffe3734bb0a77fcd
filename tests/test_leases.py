"""Session leases over HTTP (API.md, "Session leases"): acquire, busy, renew, release, expiry,
the fencing token, and the fence on every write under a leased session."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime

import httpx

from tests.contract import S, error, make_session, utc

CMS = {"__name__": "SlidingWindowConversationManager", "removed_message_count": 0}
MSG = {"role": "user", "content": [{"text": "hi"}]}


def lease_url(sid: str) -> str:
    return f"{S}/{sid}/lease"


def hdr(token: int) -> dict[str, str]:
    return {"X-Session-Lease": str(token)}


async def acquire(api: httpx.AsyncClient, sid: str, ttl: float = 30.0, holder: str = "h") -> dict:
    r = await api.post(lease_url(sid), json={"holder": holder, "ttl_seconds": ttl})
    assert r.status_code == 201, r.text
    return r.json()


async def expire(api: httpx.AsyncClient, sid: str, lease: dict) -> None:
    """Wait until `lease` has expired by the database's clock (a GET answers 404 then)."""
    await asyncio.sleep(max(lease["ttl_seconds"], 0))
    for _ in range(600):
        if (await api.get(lease_url(sid))).status_code == 404:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the lease never expired")


async def populate(api: httpx.AsyncClient, sid: str, headers: dict | None = None) -> None:
    """A session with agent `a` holding message 0 and a multi-agent state `g`."""
    await make_session(api, sid)
    r = await api.post(
        f"{S}/{sid}/agents",
        json={"agent_id": "a", "state": {}, "conversation_manager_state": CMS},
    )
    assert r.status_code == 201, r.text
    r = await api.post(f"{S}/{sid}/agents/a/messages", json={"message_id": 0, "message": MSG})
    assert r.status_code == 201, r.text
    r = await api.post(f"{S}/{sid}/multi-agents", json={"multi_agent_id": "g", "state": {}})
    assert r.status_code == 201, r.text


async def snapshot(api: httpx.AsyncClient, sid: str) -> tuple:
    """Everything stored under the session, to show that a refused write changed nothing."""
    session = (await api.get(f"{S}/{sid}")).json()
    agents = (await api.get(f"{S}/{sid}/agents")).json()
    messages = (await api.get(f"{S}/{sid}/agents/a/messages")).json()
    graph = (await api.get(f"{S}/{sid}/multi-agents/g")).json()
    return session, agents, messages, graph


# --- acquire, read, busy -----------------------------------------------------------------------


async def test_acquire_answers_201_with_a_token_and_expiry_then_busy_for_others(api, sid):
    await make_session(api, sid)
    before = datetime.now().astimezone()
    r = await api.post(lease_url(sid), json={"holder": "worker-1 pid 42", "ttl_seconds": 20})
    assert r.status_code == 201, r.text
    lease = r.json()
    assert set(lease) == {
        "session_id",
        "token",
        "holder",
        "acquired_at",
        "expires_at",
        "ttl_seconds",
    }
    assert lease["session_id"] == sid and lease["holder"] == "worker-1 pid 42"
    assert isinstance(lease["token"], int) and lease["token"] > 0
    assert r.headers["location"] == f"{S}/{sid}/lease"
    expires = utc(lease["expires_at"])
    assert 15 < (expires - utc(lease["acquired_at"])).total_seconds() <= 20
    assert expires > before and 15 < lease["ttl_seconds"] <= 20

    r = await api.post(lease_url(sid), json={"holder": "worker-2", "ttl_seconds": 5})
    err = error(r, 409, "session_busy", "worker-1 pid 42")
    assert 1 <= int(r.headers["retry-after"]) <= 20
    assert math.isclose(int(r.headers["retry-after"]), err["details"][0]["expires_in"], abs_tol=1)
    assert err["details"][0]["holder"] == "worker-1 pid 42"
    assert utc(err["details"][0]["expires_at"]) == expires

    r = await api.get(lease_url(sid))  # anyone may see who holds it, but not the token
    assert r.status_code == 200 and r.json()["holder"] == "worker-1 pid 42"
    assert "token" not in r.json() and r.json()["expires_at"] == lease["expires_at"]


async def test_acquire_defaults_and_refuses_bad_bodies(api, sid):
    await make_session(api, sid)
    for body in (
        {"ttl_seconds": 0},
        {"ttl_seconds": -1},
        {"ttl_seconds": 3601},
        {"ttl_seconds": "soon"},
        {"holder": "x" * 256},
        {"holder": 5},
    ):
        error(await api.post(lease_url(sid), json=body), 422, "invalid_request")
    r = await api.post(lease_url(sid), content=b"holder=x", headers={"content-type": "text/plain"})
    error(r, 415, "unsupported_media_type")
    r = await api.post(lease_url(sid), json={})
    assert r.status_code == 201 and r.json()["holder"] == ""
    assert 29 < r.json()["ttl_seconds"] <= 30


async def test_lease_routes_of_a_missing_session_answer_404(api, sid):
    error(await api.post(lease_url(sid), json={}), 404, "not_found", sid)
    error(await api.get(lease_url(sid)), 404, "not_found", sid)
    error(await api.put(lease_url(sid), json={}, headers=hdr(1)), 404, "not_found", sid)
    error(await api.delete(lease_url(sid), headers=hdr(1)), 404, "not_found", sid)
    error(await api.post(f"{S}/a%2Fb/lease", json={}), 422, "invalid_id")


async def test_no_lease_means_404_on_read_and_writes_without_a_token_pass(api, sid):
    await populate(api, sid)
    error(await api.get(lease_url(sid)), 404, "not_found", "no live lease")
    r = await api.post(f"{S}/{sid}/agents/a/messages", json={"message_id": 1, "message": MSG})
    assert r.status_code == 201


# --- the fence on writes -------------------------------------------------------------------------


def writes(sid: str) -> list[tuple[str, str, dict | None]]:
    """Every write route under a session, as (method, path, body) that would succeed."""
    a = f"{S}/{sid}/agents"
    m = f"{a}/a/messages"
    g = f"{S}/{sid}/multi-agents"
    return [
        ("PUT", f"{S}/{sid}", {"session_type": "AGENT"}),
        ("POST", a, {"agent_id": "b", "state": {}, "conversation_manager_state": CMS}),
        ("PUT", f"{a}/a", {"state": {"x": 1}, "conversation_manager_state": CMS}),
        ("POST", m, {"message_id": 1, "message": MSG}),
        ("POST", f"{m}/batch", {"messages": [{"message_id": 2, "message": MSG}]}),
        ("PUT", f"{m}/0", {"message": MSG, "redact_message": MSG}),
        ("DELETE", f"{m}/0", None),
        ("POST", g, {"multi_agent_id": "h", "state": {}}),
        ("PUT", f"{g}/g", {"state": {"x": 1}}),
        ("DELETE", f"{g}/g", None),
        ("DELETE", f"{a}/a", None),
        ("DELETE", f"{S}/{sid}", None),
    ]


async def test_every_write_needs_the_live_token_and_a_refused_one_changes_nothing(api, sid):
    await populate(api, sid)
    lease = await acquire(api, sid)
    before = await snapshot(api, sid)
    for method, path, body in writes(sid):
        r = await api.request(method, path, json=body)
        error(r, 409, "session_busy", sid)
        assert r.headers["retry-after"]
        r = await api.request(method, path, json=body, headers=hdr(lease["token"] + 1000))
        error(r, 409, "lease_lost", sid)
    assert await snapshot(api, sid) == before  # reads were never blocked, nothing changed
    for method, path, body in writes(sid):  # in an order where each succeeds
        r = await api.request(method, path, json=body, headers=hdr(lease["token"]))
        assert r.status_code in (200, 201, 204), (method, path, r.text)
    error(await api.get(f"{S}/{sid}"), 404, "not_found")


async def test_a_bad_lease_header_is_refused_with_422(api, sid):
    await populate(api, sid)
    for value in ("abc", "0", "-3", "1.5", str(2**63)):
        r = await api.post(
            f"{S}/{sid}/agents/a/messages",
            json={"message_id": 1, "message": MSG},
            headers={"X-Session-Lease": value},
        )
        error(r, 422, "invalid_request")


async def test_a_token_without_any_lease_is_lost(api, sid):
    await populate(api, sid)
    r = await api.put(
        f"{S}/{sid}/agents/a", json={"state": {}, "conversation_manager_state": CMS}, headers=hdr(7)
    )
    error(r, 409, "lease_lost")


async def test_import_replacing_a_leased_session_needs_the_token(api, sid):
    await populate(api, sid)
    export = (await api.get(f"{S}/{sid}/export")).content
    lease = await acquire(api, sid)
    url = f"{S}/import?replace=true"
    ndjson = {"content-type": "application/x-ndjson"}
    error(await api.post(url, content=export, headers=ndjson), 409, "session_busy")
    r = await api.post(url, content=export, headers={**ndjson, **hdr(lease["token"] + 1)})
    error(r, 409, "lease_lost")
    r = await api.post(url, content=export, headers={**ndjson, **hdr(lease["token"])})
    assert r.status_code == 201, r.text


# --- renew, release, expiry, tokens --------------------------------------------------------------


async def test_renew_extends_only_the_live_lease(api, sid):
    await make_session(api, sid)
    lease = await acquire(api, sid, ttl=5)
    r = await api.put(lease_url(sid), json={"ttl_seconds": 60}, headers=hdr(lease["token"]))
    assert r.status_code == 200, r.text
    renewed = r.json()
    assert renewed["token"] == lease["token"] and renewed["holder"] == "h"
    assert utc(renewed["expires_at"]) > utc(lease["expires_at"])
    assert renewed["acquired_at"] == lease["acquired_at"] and renewed["ttl_seconds"] > 55
    r = await api.put(lease_url(sid), json={"ttl_seconds": 5}, headers=hdr(lease["token"] + 1))
    error(r, 409, "lease_lost")
    error(await api.put(lease_url(sid), json={}), 422, "invalid_request", "X-Session-Lease")
    error(await api.delete(lease_url(sid)), 422, "invalid_request", "X-Session-Lease")


async def test_release_is_idempotent_and_frees_the_session(api, sid):
    await populate(api, sid)
    lease = await acquire(api, sid)
    assert (await api.delete(lease_url(sid), headers=hdr(lease["token"] + 5))).status_code == 204
    error(await api.post(lease_url(sid), json={}), 409, "session_busy")  # a wrong token: no-op
    for _ in range(2):
        assert (await api.delete(lease_url(sid), headers=hdr(lease["token"]))).status_code == 204
    error(await api.get(lease_url(sid)), 404, "not_found")
    r = await api.put(f"{S}/{sid}/agents/a", json={"state": {}, "conversation_manager_state": CMS})
    assert r.status_code == 200  # no lease: writes without a token pass again
    r = await api.put(
        f"{S}/{sid}/agents/a",
        json={"state": {}, "conversation_manager_state": CMS},
        headers=hdr(lease["token"]),
    )
    error(r, 409, "lease_lost")  # a released token is not honoured any more
    r = await api.put(lease_url(sid), json={}, headers=hdr(lease["token"]))
    error(r, 409, "lease_lost")
    second = await acquire(api, sid)
    assert second["token"] > lease["token"]


async def test_an_expired_lease_is_taken_over_and_the_old_token_is_refused(api, sid):
    await populate(api, sid)
    first = await acquire(api, sid, ttl=0.5, holder="first")
    await expire(api, sid, first)
    # Nobody took it yet, but the lease is over: its token no longer writes or renews.
    put = ("PUT", f"{S}/{sid}/agents/a")
    body = {"state": {"by": "first"}, "conversation_manager_state": CMS}
    error(await api.request(*put, json=body, headers=hdr(first["token"])), 409, "lease_lost")
    r = await api.put(lease_url(sid), json={}, headers=hdr(first["token"]))
    error(r, 409, "lease_lost")
    second = await acquire(api, sid, holder="second")  # no clean-up needed
    assert second["token"] > first["token"]
    error(await api.request(*put, json=body, headers=hdr(first["token"])), 409, "lease_lost")
    body = {"state": {"by": "second"}, "conversation_manager_state": CMS}
    assert (await api.request(*put, json=body, headers=hdr(second["token"]))).status_code == 200
    assert (await api.get(f"{S}/{sid}/agents/a")).json()["state"] == {"by": "second"}
    # The old holder's release does not end the new lease.
    assert (await api.delete(lease_url(sid), headers=hdr(first["token"]))).status_code == 204
    assert (await api.get(lease_url(sid))).json()["holder"] == "second"


async def test_tokens_grow_across_delete_and_re_create(api, sid):
    await make_session(api, sid)
    tokens = []
    for _ in range(3):
        lease = await acquire(api, sid)
        tokens.append(lease["token"])
        r = await api.delete(f"{S}/{sid}", headers=hdr(lease["token"]))
        assert r.status_code == 204
        await make_session(api, sid)  # the lease went with the session
        r = await api.put(f"{S}/{sid}", json={}, headers=hdr(lease["token"]))
        error(r, 409, "lease_lost")
        assert (await api.put(f"{S}/{sid}", json={})).status_code == 200
    assert tokens == sorted(tokens) and len(set(tokens)) == 3


async def test_concurrent_acquires_give_exactly_one_lease(api, sid):
    await make_session(api, sid)
    answers = await asyncio.gather(
        *(api.post(lease_url(sid), json={"holder": f"h{i}"}) for i in range(12))
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * 11, statuses
    winner = next(r.json() for r in answers if r.status_code == 201)
    for r in answers:
        if r.status_code == 409:
            assert r.json()["error"]["details"][0]["holder"] == winner["holder"]


async def test_lease_routes_are_documented_with_the_header_on_every_write(api):
    spec = (await api.get("/openapi.json")).json()
    lease = "/api/v1/sessions/{session_id}/lease"
    assert set(spec["paths"][lease]) == {"post", "get", "put", "delete"}
    assert "409" in spec["paths"][lease]["post"]["responses"]
    for route, methods in spec["paths"].items():
        if not route.startswith("/api/v1/sessions/{session_id}") or route.endswith("/export"):
            continue
        for method, op in methods.items():
            if method in ("post", "put", "delete") and (route, method) != (lease, "post"):
                names = {p["name"] for p in op.get("parameters", [])}
                assert "X-Session-Lease" in names, (method, route)
                assert "409" in op["responses"] or method == "delete", (method, route)


async def test_lease_writes_answer_a_repeated_idempotency_key_with_the_first_outcome(api, sid):
    await make_session(api, sid)
    key = {"Idempotency-Key": f"acquire-{sid}"}
    first = await api.post(lease_url(sid), json={"holder": "h", "ttl_seconds": 30}, headers=key)
    assert first.status_code == 201
    again = await api.post(lease_url(sid), json={"holder": "h", "ttl_seconds": 30}, headers=key)
    assert again.status_code == 201  # a lost answer retried: the same lease, not "busy"
    assert again.json()["token"] == first.json()["token"]
    assert again.json()["expires_at"] == first.json()["expires_at"]
    other = await api.post(lease_url(sid), json={"holder": "x", "ttl_seconds": 30}, headers=key)
    error(other, 422, "invalid_request")  # the same key for another request
    token = hdr(first.json()["token"])
    renew_key = {"Idempotency-Key": f"renew-{sid}", **token}
    renewed = await api.put(lease_url(sid), json={"ttl_seconds": 60}, headers=renew_key)
    repeat = await api.put(lease_url(sid), json={"ttl_seconds": 60}, headers=renew_key)
    assert renewed.status_code == repeat.status_code == 200
    assert repeat.json()["expires_at"] == renewed.json()["expires_at"]
    release_key = {"Idempotency-Key": f"release-{sid}", **token}
    for _ in range(2):
        assert (await api.delete(lease_url(sid), headers=release_key)).status_code == 204
    error(await api.get(lease_url(sid)), 404, "not_found")


async def test_lease_routes_need_the_api_key_like_every_route(app_factory, sid):
    from tests.conftest import app_client

    async with app_client(app_factory(api_keys="k")) as http:
        key = {"Authorization": "Bearer k"}
        assert (await http.post(S, json={"session_id": sid}, headers=key)).status_code == 201
        for method in ("POST", "GET", "PUT", "DELETE"):
            r = await http.request(method, lease_url(sid), json={}, headers=hdr(1))
            error(r, 401, "unauthorized")
        assert (await http.post(lease_url(sid), json={}, headers=key)).status_code == 201


async def test_a_holder_with_a_nul_character_is_refused(api, sid):
    await make_session(api, sid)
    r = await api.post(lease_url(sid), json={"holder": "a\u0000b"})
    error(r, 422, "invalid_request", "holder")
