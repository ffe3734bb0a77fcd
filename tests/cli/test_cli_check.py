"""`strands-cli session check` and `init --session-url`: each failure says what to do."""

from __future__ import annotations

import socket

import pytest


def test_closed_port_reports_connection_refused(invoke, free_port) -> None:
    port = free_port()
    result = invoke("session", "check", "--url", f"http://127.0.0.1:{port}")

    assert result.exit_code == 1
    assert "connection refused" in result.output
    assert f"nothing listens on port {port}" in result.output
    assert "strands-cli run --local" in result.output


def test_ready_backend_passes(invoke, stub_server) -> None:
    result = invoke("session", "check", "--url", stub_server.url + "/", "--api-key", "k1")

    assert result.exit_code == 0, result.output
    assert "ready" in result.output
    assert ("/health/ready", "Bearer k1") in stub_server.requests
    assert ("/api/v1/sessions", "Bearer k1") in stub_server.requests


@pytest.mark.parametrize("path", ["/health/ready", "/api/v1/sessions"])
def test_unauthorized_reports_the_key(invoke, stub_server, error_body, path) -> None:
    stub_server.answer(path, 401, error_body("unauthorized", "a valid API key is required"))

    result = invoke("session", "check", "--url", stub_server.url, "--api-key", "wrong")

    assert result.exit_code == 1
    assert "401" in result.output and "API key is missing or wrong" in result.output
    assert "--api-key" in result.output


def test_schema_behind_head_says_to_migrate(invoke, stub_server, error_body) -> None:
    message = "the database schema is not migrated to head; run `python -m service migrate`"
    stub_server.answer("/health/ready", 503, error_body("service_unavailable", message))

    result = invoke("session", "check", "--url", stub_server.url)

    assert result.exit_code == 1
    assert "schema is not up to date" in result.output
    assert "python -m service migrate" in result.output


def test_database_down_says_so(invoke, stub_server, error_body) -> None:
    stub_server.answer(
        "/health/ready", 503, error_body("service_unavailable", "the database is not connected")
    )

    result = invoke("session", "check", "--url", stub_server.url)

    assert result.exit_code == 1
    assert "not ready (503): the database is not connected" in result.output
    assert "DATABASE_URL" in result.output


def test_silent_server_times_out(invoke) -> None:
    # A listening socket nobody accepts on: the connection opens, no answer ever comes.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        result = invoke("session", "check", "--url", url, "--timeout", "0.5")

    assert result.exit_code == 1
    assert "no answer" in result.output and "0.5 s" in result.output


def test_wrong_url_is_reported(invoke, stub_server) -> None:
    stub_server.answer("/health/ready", 404, {"detail": "Not Found"})

    assert (
        "not look like a session backend"
        in invoke("session", "check", "--url", stub_server.url).output
    )
    assert "not an http(s) URL" in invoke("session", "check", "--url", "localhost:8000").output


def test_check_uses_the_projects_env_file(invoke, make_project, stub_server) -> None:
    root = make_project("demo-agent", "postgresql", "--session-url", stub_server.url)

    result = invoke("session", "check", cwd=root)

    assert result.exit_code == 0, result.output
    assert stub_server.url in result.output


def test_init_warns_but_succeeds_when_the_backend_is_down(invoke, tmp_path, free_port) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = invoke("init", "demo", "--session-url", url, "--output-dir", str(tmp_path))

    assert result.exit_code == 0, result.output
    assert "Warning" in result.output and "connection refused" in result.output
    assert f"SESSION_BACKEND_URL={url}" in (tmp_path / "demo" / ".env").read_text()


def test_strict_init_fails_and_writes_nothing(invoke, tmp_path, free_port) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = invoke("init", "demo", "--session-url", url, "--strict", "--output-dir", str(tmp_path))

    assert result.exit_code == 1
    assert "connection refused" in result.output
    assert not (tmp_path / "demo").exists()


def test_init_confirms_a_reachable_backend(invoke, tmp_path, stub_server) -> None:
    result = invoke(
        "init", "demo", "--session-url", stub_server.url, "--strict", "--output-dir", str(tmp_path)
    )

    assert result.exit_code == 0, result.output
    assert "is ready" in result.output
