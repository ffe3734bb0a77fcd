"""`.env.example` lists service settings at their defaults: copying it to `.env` changes nothing
about how the service behaves until the user edits a value."""

from __future__ import annotations

import pytest

from service.settings import Settings
from tests.support import ROOT


def test_copying_env_example_keeps_every_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    example = ROOT / ".env.example"
    listed = {
        line.split("=", 1)[0].strip().lower()
        for line in example.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    assert {"log_format", "log_level", "workers"} <= listed  # the file does list settings

    copied = Settings(_env_file=example)  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]

    for name in Settings.model_fields:
        assert getattr(copied, name) == getattr(defaults, name), name.upper()
