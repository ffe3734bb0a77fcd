"""`run`, `session check`, `stop` and the agent agree on one URL: the project's
SESSION_BACKEND_URL. `stop` is safe to repeat. (A stand-in `docker`; local processes are in
test_cli_local.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

from strands_session_cli.project import read_env_file


def agent_url(root) -> str:
    """The URL the generated agent's own settings resolve to, read as the agent reads it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BACKEND_")}
    code = "from demo_agent.config import load_settings; print(load_settings().session_backend_url)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1]


def test_init_session_url_sets_the_compose_port_to_match(make_project, stub_server) -> None:
    root = make_project("demo-agent", "postgresql", "--session-url", stub_server.url + "/")
    env = read_env_file(root / ".env")

    assert env["SESSION_BACKEND_URL"] == stub_server.url
    assert env["SESSION_BACKEND_PORT"] == port_of(stub_server.url)
    assert agent_url(root) == stub_server.url


def test_run_with_a_port_moves_the_project_and_check_follows(
    invoke, make_project, fake_docker, stub_server, other_stub_server
) -> None:
    # stub_server stands for an unrelated server on the port .env named first.
    root = make_project("demo-agent", "postgresql", "--session-url", stub_server.url)
    new_port = port_of(other_stub_server.url)

    started = invoke("run", "--port", new_port, cwd=root)

    assert started.exit_code == 0, started.output
    assert f"Pointed the project at {other_stub_server.url}" in started.output
    env = read_env_file(root / ".env")
    assert env["SESSION_BACKEND_URL"] == other_stub_server.url
    assert env["SESSION_BACKEND_PORT"] == new_port
    assert fake_docker.compose_ports()[0]["SESSION_BACKEND_PORT"] == new_port
    assert agent_url(root) == other_stub_server.url

    stub_server.requests.clear()
    checked = invoke("session", "check", cwd=root)
    assert checked.exit_code == 0, checked.output
    assert other_stub_server.url in checked.output
    assert stub_server.requests == []  # the unrelated server was never asked

    again = invoke("run", cwd=root)  # no --port: where .env now says
    assert again.exit_code == 0, again.output
    assert fake_docker.compose_ports()[-1]["SESSION_BACKEND_PORT"] == new_port
    assert stub_server.requests == []


def test_run_refuses_to_start_a_backend_the_agent_would_not_use(
    invoke, make_project, fake_docker
) -> None:
    root = make_project("demo-agent", "postgresql")
    env_file = root / ".env"
    env_file.write_text(
        env_file.read_text().replace(
            "SESSION_BACKEND_URL=http://127.0.0.1:8000",
            "SESSION_BACKEND_URL=https://sessions.example.com",
        )
    )

    result = invoke("run", cwd=root)

    assert result.exit_code == 1
    assert "https://sessions.example.com" in result.output
    assert "--port" in result.output
    assert fake_docker.compose_calls() == []


def test_an_exported_url_that_overrides_env_is_pointed_out(
    invoke, make_project, fake_docker, stub_server, other_stub_server, monkeypatch
) -> None:
    root = make_project("demo-agent", "postgresql", "--session-url", stub_server.url)
    monkeypatch.setenv("SESSION_BACKEND_URL", stub_server.url)

    result = invoke("run", "--port", port_of(other_stub_server.url), cwd=root)

    assert result.exit_code == 0, result.output
    assert "overrides the project's .env" in result.output
    assert f"set it to {other_stub_server.url}" in result.output


def test_stop_twice_succeeds_with_and_without_docker(
    invoke, make_project, fake_docker, tmp_path, monkeypatch
) -> None:
    root = make_project("demo-agent", "postgresql")

    for _ in range(2):
        stopped = invoke("stop", cwd=root)
        assert stopped.exit_code == 0, stopped.output
    assert len(fake_docker.compose_calls()) == 2  # `compose down` is itself repeatable

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for _ in range(2):
        stopped = invoke("stop", cwd=root)
        assert stopped.exit_code == 0, stopped.output
        assert "No session backend is running here" in stopped.output
        assert "Docker is not installed" in stopped.output

    local = invoke("stop", "--local", cwd=root)
    assert local.exit_code == 0 and "No local session backend is running" in local.output


def test_stop_and_down_describe_their_own_local_option(invoke) -> None:
    for args in (("stop",), ("session", "down")):
        text = " ".join(invoke(*args, "--help").output.split())
        assert "Stop only the local process" in text, text
        assert "instead of containers" not in text
    run_help = " ".join(invoke("run", "--help").output.split())
    assert "point the project's .env at it" in run_help
