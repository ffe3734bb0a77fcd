"""Logs: JSON lines from a real process, one access line per request, no secrets, levels."""

from __future__ import annotations

import json
import logging
import uuid
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from service import logs
from service.app import create_app
from tests.conftest import app_client, make_settings


def _with_password(dsn: str, password: str) -> tuple[str, str]:
    """The DSN with a password (the test server trusts local connections when it has none)."""
    parts = urlsplit(dsn)
    if parts.password:
        return dsn, parts.password
    netloc = f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc)), password


def test_json_lines_with_an_access_line_per_request_and_no_secrets(service_process, database_url):
    key = f"key-{uuid.uuid4().hex}"
    dsn, password = _with_password(database_url, f"pw-{uuid.uuid4().hex}")
    content = f"private words {uuid.uuid4().hex}"
    request_id = f"req-{uuid.uuid4().hex}"
    proc = service_process(
        {"DATABASE_URL": dsn, "API_KEYS": key, "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    )
    auth = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=proc.url, headers=auth) as http:
        base = "/api/v1/sessions/log-s"
        assert http.post("/api/v1/sessions", json={"session_id": "log-s"}).status_code == 201
        assert (
            http.post(
                f"{base}/agents",
                json={
                    "agent_id": "a",
                    "state": {"secret": content},
                    "conversation_manager_state": {},
                },
            ).status_code
            == 201
        )
        answer = http.post(
            f"{base}/agents/a/messages",
            headers={"x-request-id": request_id},
            json={"message_id": 0, "message": {"role": "user", "content": [{"text": content}]}},
        )
        assert answer.status_code == 201
        assert (
            http.get("/api/v1/sessions", headers={"authorization": "Bearer wrong"}).status_code
            == 401
        )
    proc.stop()
    output = proc.log_path.read_text(errors="replace")

    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert all({"timestamp", "level", "logger", "message"} <= r.keys() for r in records)
    access = [r for r in records if r["logger"] == "service.access"]
    mine = [r for r in access if r.get("request_id") == request_id]
    assert len(mine) == 1
    line = mine[0]
    assert line["level"] == "INFO" and line["method"] == "POST" and line["status"] == 201
    assert line["route"] == "/api/v1/sessions/{session_id}/agents/{agent_id}/messages"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert any(r["status"] == 401 and r["route"] == "/api/v1/sessions" for r in access)
    assert all(r.get("request_id") for r in access)
    assert any(r["logger"].startswith("uvicorn") for r in records)  # uvicorn's lines, as JSON
    for secret in (key, password, content, "wrong"):
        assert secret not in output


def test_level_and_text_format(service_process, database_url):
    proc = service_process(
        {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "text"}
    )
    httpx.get(proc.url + "/api/v1/sessions")
    proc.stop()
    output = proc.log_path.read_text(errors="replace")
    assert " INFO " not in output and "Started server process" not in output
    assert "GET /api/v1/sessions 200" not in output  # access lines are INFO (5xx: WARNING)
    assert " WARNING service: API_KEYS is unset" in output  # text lines, at the level asked


async def test_an_unhandled_error_is_logged_with_its_context(database_url, caplog):
    app = create_app(make_settings(), dsn=database_url)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    caplog.set_level(logging.INFO)
    async with app_client(app) as http:
        answer = await http.get("/boom", headers={"x-request-id": "boom-1"})
    assert answer.status_code == 500 and answer.json()["error"]["request_id"] == "boom-1"
    access = [r for r in caplog.records if r.name == "service.access"]
    assert len(access) == 1
    record = access[0]
    assert record.levelno == logging.ERROR
    assert (record.request_id, record.route, record.status, record.error) == (
        "boom-1",
        "/boom",
        500,
        "RuntimeError",
    )
    # The traceback, logged by the request id middleware, carries the id as well.
    failure = [r for r in caplog.records if r.exc_info and r.name == "service"]
    assert failure and json.loads(logs.JsonFormatter().format(failure[0]))["exc_type"] == (
        "RuntimeError"
    )


@pytest.mark.parametrize("formatter", [logs.JsonFormatter(), logs.TextFormatter()])
def test_formatters_add_the_request_id_and_extras(formatter):
    record = logging.LogRecord("service.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.session_count = 3
    token = logs.REQUEST_ID.set("rid-7")
    try:
        text = formatter.format(record)
    finally:
        logs.REQUEST_ID.reset(token)
    if isinstance(formatter, logs.JsonFormatter):
        parsed = json.loads(text)
        assert parsed["message"] == "hello you" and parsed["request_id"] == "rid-7"
        assert parsed["session_count"] == 3 and parsed["level"] == "INFO"
    else:
        assert text.endswith("INFO service.x [rid-7]: hello you")
