"""A postgresql project set up as its README says gets `strands-cli` in its own environment, and
that `strands-cli` finds the backend's server in the checkout the client came from.

The project's virtual environment sees this checkout's installed packages through a `.pth` file
(so nothing is downloaded but the build tools pip's isolated builds use); what the README's
commands install (the client from `client/`, the project itself) goes into it for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from strands_session_cli import locate

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]


def run(*args: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_readme_setup_puts_strands_cli_in_the_projects_environment(tmp_path, stub_server) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_BACKEND_", "PYTHON"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    made = run(
        sys.executable, "-m", "strands_session_cli", "init", "demo-agent",
        "--session-state=postgresql", "--session-url", stub_server.url, cwd=tmp_path, env=env,
    )  # fmt: skip
    root = tmp_path / "demo-agent"
    readme = (root / "README.md").read_text()
    client_step = f"pip install {REPO / 'client'}"
    assert client_step in readme and client_step in made.stdout

    venv = root / ".venv"
    run(sys.base_prefix + "/bin/python3", "-m", "venv", venv, cwd=root, env=env)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "checkout-packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    build = REPO / "client" / "build"  # what building the client in its folder leaves
    built_before = build.exists()
    try:
        run(*pip, REPO / "client", cwd=root, env=env)  # the README's steps, in order
    finally:
        if not built_before:
            shutil.rmtree(build, ignore_errors=True)
    run(*pip, "-e", ".[test]", cwd=root, env=env)

    cli = venv / "bin" / "strands-cli"
    assert cli.is_file()
    assert "strands-cli" in run(cli, "--version", cwd=root, env=env).stdout
    checked = run(cli, "session", "check", cwd=root, env=env)
    assert stub_server.url in checked.stdout
    # `run --local` would run the server from the checkout the client was installed from.
    code = (
        "import sys; from strands_session_cli import locate; print(locate.server(sys.executable))"
    )
    found = run(venv / "bin" / "python", "-c", code, cwd=root, env=env).stdout
    assert str(REPO / ".venv" / "bin" / "python") in found, found


def test_run_local_without_a_server_says_what_to_do(
    invoke, make_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project()
    monkeypatch.setattr(locate, "find_spec", lambda name: None)
    monkeypatch.setattr(locate, "checkout", lambda: None)

    result = invoke("run", "--local", "--port", "1", cwd=root)

    assert result.exit_code == 1
    assert "cannot find the session backend's server" in result.output
    assert "make install" in result.output
