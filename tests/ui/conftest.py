"""Fixtures of the session browser's tests: Debian's Chromium driven by Playwright (never a
browser Playwright downloads itself), and where screenshots go."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.ui_data import ARTEFACTS, CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; installed here when `make test` did not already (fails if it cannot)."""
    if not os.access(CHROMIUM, os.X_OK):
        done = subprocess.run(
            ["sh", str(Path(__file__).parent / "ensure_chromium.sh")],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, f"cannot install chromium:\n{done.stdout}\n{done.stderr}"
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing"
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def artefacts(request: pytest.FixtureRequest) -> Path:
    """Where a test leaves its screenshots (gitignored; kept as CI artefacts)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return ARTEFACTS
