"""The screenshot of docs/ui.png, taken from a real render.

    .venv/bin/python tests/ui/screenshot.py docs/ui.png [--admin-dsn DSN]

Starts a real `python -m service` on a fresh database, stores the test conversation (a tool
call and its result, an image, a document, a redaction, a message holding a script), opens the
conversation page in Debian's Chromium, expands the tool blocks and saves a screenshot.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from service import migrate
from tests.support import create_database, drop_database
from tests.ui.ui_data import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CMS,
    S,
    conversation,
    encoded,
    png,
    start_service,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    dsn = create_database(args.admin_dsn, prefix="sbt_uishot")
    try:
        migrate.apply(dsn)
        service = start_service(dsn, Path(tempfile.mkdtemp()) / "service.log")
        try:
            messages = conversation()
            chart = {"format": "png", "source": {"bytes": encoded(png(240, 120, (70, 130, 200)))}}
            messages[3]["message"]["content"][1] = {"image": chart}
            with httpx.Client(base_url=service.url) as http:
                http.post(S, json={"session_id": "support-4711", "session_type": "AGENT"})
                http.post(
                    f"{S}/support-4711/agents",
                    json={"agent_id": "assistant", "state": {}, "conversation_manager_state": CMS},
                ).raise_for_status()
                http.post(
                    f"{S}/support-4711/agents/assistant/messages/batch",
                    json={"messages": messages},
                ).raise_for_status()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.goto(service.url + "/ui/sessions/support-4711/agents/assistant")
                page.click("button[data-details=open]")
                page.screenshot(path=str(args.output), full_page=True)
                browser.close()
        finally:
            service.stop()
    finally:
        drop_database(args.admin_dsn, dsn)


if __name__ == "__main__":
    main()
