"""What API.md promises of every answer, as assertions the HTTP tests share."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx

S = "/api/v1/sessions"

CMS = {
    "__name__": "SlidingWindowConversationManager",
    "removed_message_count": 0,
    "window_size": 40,
}


def check_response(r: httpx.Response) -> None:
    """What API.md promises of every answer: X-Request-ID; errors in the one envelope;
    no 5xx for anything these tests send; 204/304 without a body."""
    assert r.headers.get("x-request-id"), f"{r.request.method} {r.request.url}: no X-Request-ID"
    assert r.status_code < 500, f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}"
    if r.status_code >= 400:
        body = r.json()
        assert list(body) == ["error"], body
        err = body["error"]
        assert (
            {"code", "message", "request_id"}
            <= set(err)
            <= {"code", "message", "details", "request_id"}
        ), err
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", err["code"]), err
        assert isinstance(err["message"], str) and err["message"].strip(), err
        assert err["request_id"] == r.headers["x-request-id"], err
    if r.status_code in (204, 304):
        assert r.content == b""


async def checked(response: httpx.Response) -> None:
    await response.aread()
    check_response(response)


def error(r: httpx.Response, status: int, code: str, *words: str) -> dict:
    """Assert an error answer: status, code, and that the message names `words`."""
    assert r.status_code == status, (r.request.method, str(r.request.url), r.status_code, r.text)
    err = r.json()["error"]
    assert err["code"] == code, err
    for word in words:
        assert word in err["message"], (word, err)
    return err


def utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value
    return parsed


async def make_session(api: httpx.AsyncClient, sid: str) -> None:
    r = await api.post(S, json={"session_id": sid, "session_type": "AGENT"})
    assert r.status_code == 201, r.text
