"""Valid requests of simple routes reach their handler directly (`service.direct`); anything
that does not validate still goes through FastAPI's handler and answers as it always did."""

from __future__ import annotations

import fastapi.routing
import pytest

from service.direct import direct_caller
from service.http import JSONRoute

S = "/api/v1/sessions"


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the requests FastAPI's own handler resolved."""
    seen: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs["request"].url.path)
        return await original(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return seen


def test_the_routes_every_turn_calls_have_a_direct_call():
    from service.routes import agents, messages

    routes = [r for r in (*messages.router.routes, *agents.router.routes)]
    assert all(isinstance(r, JSONRoute) for r in routes)
    direct = {f"{sorted(r.methods)[0]} {r.path}" for r in routes if direct_caller(r) is not None}
    for expected in (
        f"POST {S}/{{session_id}}/agents/{{agent_id}}/messages",
        f"POST {S}/{{session_id}}/agents/{{agent_id}}/messages/batch",
        f"GET {S}/{{session_id}}/agents/{{agent_id}}/messages",
        f"GET {S}/{{session_id}}/agents/{{agent_id}}",
        f"PUT {S}/{{session_id}}/agents/{{agent_id}}",
    ):
        assert expected in direct


async def test_valid_requests_skip_fastapi_and_invalid_ones_answer_as_before(api, sid, solved):
    assert (await api.post(S, json={"session_id": sid})).status_code == 201
    agent = {"agent_id": "a", "state": {}, "conversation_manager_state": {}}
    assert (await api.post(f"{S}/{sid}/agents", json=agent)).status_code == 201
    messages = f"{S}/{sid}/agents/a/messages"
    body = {"message_id": 0, "message": {"role": "user", "content": [{"text": "hi"}]}}
    assert (await api.post(messages, json=body)).status_code == 201
    listed = await api.get(messages, params={"limit": "1", "order": "desc"})
    assert listed.status_code == 200 and [m["message_id"] for m in listed.json()["items"]] == [0]
    assert solved == []  # none of these needed FastAPI's handler

    bad = await api.post(messages, json={**body, "message_id": -1})
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["code"] == "invalid_id"
    assert error["details"][0]["loc"] == ["body", "message_id"]
    bad_query = await api.get(messages, params={"limit": "many"})
    assert bad_query.status_code == 422
    assert bad_query.json()["error"]["details"][0]["loc"] == ["query", "limit"]
    bad_id = await api.get(f"{S}/{sid}/agents/%20")
    assert bad_id.status_code == 422 and bad_id.json()["error"]["code"] == "invalid_id"
    assert solved == [messages, messages, f"{S}/{sid}/agents/ "]
