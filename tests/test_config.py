"""Configuration: the README table is the settings class, `config` masks secrets, bad values stop.

`python -m tests.test_config` prints the table to paste into README.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from service.settings import PROJECT_ROOT, Settings
from tests.support import ROOT


def _default(value: Any) -> str:
    if value is None:
        return "(unset)"
    if value == []:
        return "(empty)"
    if isinstance(value, Path):
        value = (
            "./" + str(value.relative_to(PROJECT_ROOT))
            if value.is_relative_to(PROJECT_ROOT)
            else value
        )
    elif isinstance(value, Enum):
        value = value.value
    elif isinstance(value, bool):
        value = str(value).lower()
    return f"`{value}`"


def config_table() -> str:
    """The README's configuration table, made from the settings class."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        rows.append(f"| `{name.upper()}` | {_default(default)} | {field.description} |")
    return "\n".join(rows) + "\n"


def test_readme_table_is_the_settings_class():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert config_table() in readme, (
        "README.md's configuration table differs from service/settings.py; "
        "regenerate it with `python -m tests.test_config`"
    )
    listed = {
        line.split("`")[1]
        for line in readme.splitlines()
        if line.startswith("| `") and line.count("|") == 4
    }
    assert listed == {name.upper() for name in Settings.model_fields}


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in {n.upper() for n in Settings.model_fields} and not k.startswith("OTEL_")
    }
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_command_prints_every_setting_with_secrets_masked():
    env = {
        "DATABASE_URL": "postgresql://app:hunter2-pw@db.internal:5432/sessions",
        "API_KEYS": "first-secret-key,second-secret-key",
        "CACHE_MODE": "bounded",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer otel-token",
    }
    done = run("config", env=env)
    assert done.returncode == 0, done.stderr
    shown = dict(
        line.split("=", 1) for line in done.stdout.splitlines() if not line.startswith("#")
    )
    assert {name.upper() for name in Settings.model_fields} <= shown.keys()
    assert shown["DATABASE_URL"] == "postgresql://app:***@db.internal:5432/sessions"
    assert shown["API_KEYS"] == "***,***"
    assert shown["CACHE_MODE"] == "bounded" and shown["PORT"] == "8000"
    assert shown["OTEL_EXPORTER_OTLP_HEADERS"] == "***"
    assert "# tracing: otlp (http/protobuf)" in done.stdout
    for secret in ("hunter2-pw", "secret-key", "otel-token"):
        assert secret not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"CACHE_MODE": "fast"}, "CACHE_MODE"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "2"}, "DB_POOL_MIN_SIZE"),
        ({"PORT": "http"}, "PORT"),
        ({"DATABASE_URL": "mysql://u:pw-in-bad-dsn@h/db"}, "DATABASE_URL"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            },
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
)
def test_a_bad_value_stops_start_up_with_one_line_naming_it(env, variable):
    done = run(env=env)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"configuration error: {variable}:"), done.stderr
    assert "pw-in-bad-dsn" not in done.stderr


if __name__ == "__main__":
    sys.stdout.write(config_table())
