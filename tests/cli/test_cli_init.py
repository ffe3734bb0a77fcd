"""`strands-cli init`: templates, generated projects, names, overwrite protection."""

from __future__ import annotations

import compileall
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from strands_session_cli.scaffold import (
    SESSION_STATES,
    TEMPLATES,
    ProjectSpec,
    render_template,
)

BACKEND_ONLY = ("compose.yaml", "tests/test_session_backend.py")
REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


RENDERINGS = [
    pytest.param(template, state, id=f"{template.target}-{state}")
    for template in TEMPLATES
    for state in SESSION_STATES
    if state in template.states
]


@pytest.mark.parametrize(("template", "state"), RENDERINGS)
def test_every_template_renders(template, state) -> None:
    spec = ProjectSpec("demo-agent", session_state=state, description='Say "hi" \\ and go.')
    text = render_template(template, spec)
    target = template.output_path(spec.package)

    assert text.strip()
    if target.endswith(".py"):
        compile(text, target, "exec")
    elif target.endswith(".toml"):
        tomllib.loads(text)
    elif target.endswith(".yaml"):
        assert isinstance(yaml.safe_load(text), dict)
    assert "{{" not in text and "{%" not in text


@pytest.mark.parametrize("state", SESSION_STATES)
def test_generated_project_compiles_and_has_backend_files_only_with_postgresql(
    make_project, state
) -> None:
    root = make_project("demo-agent", state)

    assert compileall.compile_dir(root, quiet=1, force=True)
    for relative in BACKEND_ONLY:
        assert (root / relative).exists() == (state == "postgresql"), relative
    env_example = (root / ".env.example").read_text()
    assert ("SESSION_BACKEND_URL" in env_example) == (state == "postgresql")
    marker = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["strands-cli"]
    assert marker == {"package": "demo_agent", "session-state": state}
    dependencies = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    client = any(d.startswith("strands-session-client") for d in dependencies)
    assert client == (state == "postgresql")
    assert not (root / "demo_agent" / "session_backend").exists()  # depended on, not copied


def test_init_without_session_state_makes_a_project_with_no_backend(invoke, tmp_path) -> None:
    result = invoke("init", "demo-agent", "--output-dir", str(tmp_path))

    assert result.exit_code == 0, result.output
    root = tmp_path / "demo-agent"
    for relative in BACKEND_ONLY:
        assert not (root / relative).exists(), relative
    marker = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["strands-cli"]
    assert marker["session-state"] == "none"
    assert "SESSION_BACKEND" not in (root / ".env").read_text()
    assert "strands-cli run" not in result.output


def test_postgresql_projects_say_where_to_install_the_client_from(make_project) -> None:
    root = make_project()
    client = REPO / "client"

    assert f"pip install {client}" in (root / "README.md").read_text()
    assert (
        "from strands_session_client import HTTPSessionManager"
        in (root / "demo_agent" / "agent.py").read_text()
    )


def test_api_key_goes_to_the_private_env_file_only(make_project) -> None:
    root = make_project("demo-agent", "postgresql", "--api-key", "s3cret")

    assert "SESSION_BACKEND_API_KEY=s3cret" in (root / ".env").read_text()
    assert "s3cret" not in (root / ".env.example").read_text()
    assert stat.S_IMODE((root / ".env").stat().st_mode) == 0o600
    assert ".env" in (root / ".gitignore").read_text().splitlines()


def test_init_refuses_an_existing_directory_without_force(make_project, invoke) -> None:
    root = make_project("demo-agent", "postgresql")
    (root / "notes.txt").write_text("mine")
    out = str(root.parent)

    refused = invoke("init", "demo-agent", "--output-dir", out, "--session-state", "file")
    assert refused.exit_code == 1
    assert "already exists" in refused.output and "--force" in refused.output
    assert (root / "compose.yaml").exists()

    forced = invoke("init", "demo-agent", "--output-dir", out, "--session-state", "file", "--force")
    assert forced.exit_code == 0, forced.output
    for relative in BACKEND_ONLY:
        assert not (root / relative).exists(), relative
    assert (root / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "name", ["1agent", "My-Agent", "demo--agent", "demo-", "class", "strands", "a" * 41, "a b"]
)
def test_invalid_names_are_refused_clearly(invoke, tmp_path, name) -> None:
    result = invoke("init", name, "--output-dir", str(tmp_path))

    assert result.exit_code == 2
    assert "invalid project name" in result.output
    assert not any(tmp_path.iterdir())


def test_session_options_need_the_postgresql_state(invoke, tmp_path) -> None:
    result = invoke(
        "init", "demo", "--session-state", "none", "--api-key", "k", "--output-dir", "."
    )
    assert result.exit_code == 2
    assert "--session-state=postgresql" in result.output


@pytest.mark.parametrize("state", SESSION_STATES)
def test_generated_project_tests_pass_offline(make_project, state) -> None:
    root = make_project("demo-agent", state)
    env = {"PATH": str(VENV_BIN), "HOME": str(root)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    skipped = "1 skipped" in result.stdout
    assert skipped == (state == "postgresql"), result.stdout


@pytest.mark.skipif(shutil.which("ruff", path=str(VENV_BIN)) is None, reason="ruff not installed")
@pytest.mark.parametrize("state", SESSION_STATES)
def test_generated_project_is_ruff_clean(make_project, state) -> None:
    root = make_project("a-forty-character-project-name-for-lines", state)
    ruff = shutil.which("ruff", path=str(VENV_BIN))
    # --isolated: the project's own package counts as first-party for import sorting.
    common = ["--isolated", "--line-length", "100", "."]
    rules = ["--select", "E,F,W,I,B,UP,RUF"]
    for command in (["check", *rules, *common], ["format", "--check", *common]):
        result = subprocess.run([ruff, *command], cwd=root, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_generated_compose_file_is_valid(make_project) -> None:
    root = make_project()
    checker = shutil.which("check-jsonschema", path=str(VENV_BIN))
    if checker is None:
        pytest.skip("check-jsonschema not installed")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(root / "compose.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
