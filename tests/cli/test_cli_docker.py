"""`run` / `stop` / `session up|down` through Docker Compose, with a stand-in `docker`."""

from __future__ import annotations

from strands_session_cli.project import backend_compose_file


def test_run_and_stop_use_the_projects_compose_file(
    invoke, make_project, fake_docker, stub_server
) -> None:
    root = make_project("demo-agent", "postgresql", "--session-url", stub_server.url)
    compose = str(root / "compose.yaml")
    port = stub_server.url.rsplit(":", 1)[1]

    started = invoke("run", cwd=root)
    assert started.exit_code == 0, started.output
    assert fake_docker.compose_calls() == [["compose", "-f", compose, "up", "-d", "--wait"]]
    # compose publishes on the port of the project's URL, and the wait was at that URL.
    assert fake_docker.compose_ports() == [{"SESSION_BACKEND_PORT": port, "API_PORT": None}]
    assert ("/health/ready", None) in stub_server.requests
    assert f"ready at {stub_server.url}" in started.output
    assert f"{stub_server.url}/docs" in started.output

    stopped = invoke("stop", cwd=root / "demo_agent")
    assert stopped.exit_code == 0, stopped.output
    assert fake_docker.compose_calls()[1:] == [["compose", "-f", compose, "down"]]
    assert fake_docker.compose_ports()[1]["SESSION_BACKEND_PORT"] == port


def test_session_up_and_down_use_the_backends_compose_file(
    invoke, tmp_path, fake_docker, stub_server
) -> None:
    compose = str(backend_compose_file())
    port = stub_server.url.rsplit(":", 1)[1]

    started = invoke("session", "up", "--port", port, cwd=tmp_path)
    assert started.exit_code == 0, started.output
    stopped = invoke("session", "down", cwd=tmp_path)
    assert stopped.exit_code == 0, stopped.output

    assert fake_docker.compose_calls() == [
        ["compose", "-f", compose, "up", "-d", "--wait"],
        ["compose", "-f", compose, "down"],
    ]
    assert fake_docker.compose_ports()[0] == {"SESSION_BACKEND_PORT": None, "API_PORT": port}
    assert f"{stub_server.url}/docs" in started.output


def test_no_engine_is_said_plainly_with_local_suggested(invoke, make_project, fake_docker) -> None:
    root = make_project()
    fake_docker.lose_engine()

    for args, suggestion in (
        (("run",), "strands-cli run --local"),
        (("session", "up"), "strands-cli session up --local"),
    ):
        result = invoke(*args, cwd=root)
        assert result.exit_code == 1
        assert "No Docker engine is reachable" in result.output
        assert "Is the docker daemon running?" in result.output
        assert suggestion in result.output
    assert fake_docker.compose_calls() == []


def test_missing_docker_is_said_plainly(invoke, make_project, tmp_path, monkeypatch) -> None:
    root = make_project()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    result = invoke("run", cwd=root)

    assert result.exit_code == 1
    assert "Docker is not installed" in result.output
    assert "strands-cli run --local" in result.output


def test_up_reports_a_backend_that_never_gets_ready(
    invoke, make_project, fake_docker, stub_server, error_body
) -> None:
    stub_server.answer("/health/ready", 503, error_body("service_unavailable", "not migrated"))
    root = make_project("demo-agent", "postgresql", "--session-url", stub_server.url)

    result = invoke("run", "--timeout", "1", cwd=root)

    assert result.exit_code == 1
    assert "the containers are up, but" in result.output
    assert "migrat" in result.output


def test_run_needs_a_project_with_a_session_backend(invoke, make_project, tmp_path) -> None:
    outside = invoke("run", cwd=tmp_path)
    assert outside.exit_code == 1
    assert "not inside a project" in outside.output
    assert "strands-cli session up" in outside.output

    file_project = make_project("file-agent", "file")
    no_backend = invoke("run", cwd=file_project)
    assert no_backend.exit_code == 1
    assert "no session backend to run" in no_backend.output
