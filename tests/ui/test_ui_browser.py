"""The session browser in a real browser: Debian's Chromium (Playwright) against a real
`python -m service`. Screenshots go to .artifacts/ui/, never into the repository."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support import ServiceProcess
from tests.ui.ui_data import CMS, DOCUMENT, SCRIPT_TEXT, S, conversation, start_service

# Installing Chromium (when missing) happens inside the first test's set-up.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def service(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    proc = start_service(module_database_url, tmp_path_factory.mktemp("ui") / "service.log")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def seeded(service: ServiceProcess) -> dict[str, Any]:
    """Seven sessions under one prefix (created in order) and one full conversation."""
    prefix = f"ui-{uuid.uuid4().hex[:6]}-"
    with httpx.Client(base_url=service.url) as http:
        ids = [f"{prefix}{i}" for i in range(7)]
        for sid in ids:
            assert (
                http.post(S, json={"session_id": sid, "session_type": "AGENT"}).status_code == 201
            )
        chat = f"chat-{uuid.uuid4().hex[:6]}"
        http.post(S, json={"session_id": chat, "session_type": "AGENT"}).raise_for_status()
        http.post(
            f"{S}/{chat}/agents",
            json={"agent_id": "helper", "state": {}, "conversation_manager_state": CMS},
        ).raise_for_status()
        batch = http.post(
            f"{S}/{chat}/agents/helper/messages/batch", json={"messages": conversation()}
        )
        assert batch.status_code == 201, batch.text
    return {"prefix": prefix, "ids": ids, "chat": f"/ui/sessions/{quote(chat)}/agents/helper"}


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records dialogs and console errors (a CSP violation is one)."""
    context = browser.new_context()
    page = context.new_page()
    page.dialogs, page.console_errors = [], []

    def on_dialog(dialog: Any) -> None:
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    yield page
    context.close()


def test_sessions_list_shows_created_sessions_newest_first_and_pages(
    service: ServiceProcess, seeded: dict[str, Any], page: Any, artefacts: Path
) -> None:
    page.goto(f"{service.url}/ui?limit=3&prefix={seeded['prefix']}")
    seen: list[str] = []
    for _ in range(4):
        rows = page.locator("#sessions a.session-link").all_inner_texts()
        assert 0 < len(rows) <= 3
        seen += rows
        if len(seen) == 3:
            page.screenshot(path=artefacts / "sessions.png", full_page=True)
        next_link = page.locator("a.next")
        if next_link.count() == 0:
            break
        with page.expect_navigation():
            next_link.click()
    # The prefix search left out the conversation's session; paging lost and repeated nothing.
    assert seen == list(reversed(seeded["ids"]))
    assert page.console_errors == []

    page.fill("input[name=prefix]", seeded["prefix"] + "3")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert page.locator("#sessions a.session-link").all_inner_texts() == [seeded["prefix"] + "3"]
    assert page.locator("#sessions td.num").all_inner_texts() == ["0"]


def test_conversation_renders_tool_calls_images_documents_and_redactions(
    service: ServiceProcess, seeded: dict[str, Any], page: Any, artefacts: Path
) -> None:
    page.goto(service.url + seeded["chat"])
    user, assistant = page.locator("#m-0"), page.locator("#m-1")
    background = "el => getComputedStyle(el).backgroundColor"
    assert user.evaluate(background) != assistant.evaluate(background)
    assert user.locator(".text").inner_text() == "line one\nline two"  # line breaks kept

    # The tool call: collapsed, named, its input pretty-printed once opened.
    tool = page.locator("#m-1 details.tool-use")
    assert tool.locator("summary").inner_text().startswith("Tool call weather_lookup")
    assert not tool.locator("pre").is_visible()
    tool.locator("summary").click()
    assert tool.locator("pre").inner_text() == '{\n  "city": "Oslo",\n  "days": 3\n}'
    result = page.locator("#m-2 details.tool-result")
    assert "success" in result.locator("> summary").inner_text()
    # The script is allowed by the CSP and works: "Expand all" opens the tool result.
    page.click("button[data-details=open]")
    assert '"temp_c": 7' in result.locator("pre").inner_text()

    # The image, a data: URL the CSP allows for images only, decoded by the browser.
    image = page.locator("#m-3 figure.image img")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 6

    # The document: a download of exactly the stored bytes.
    with page.expect_download() as download:
        page.click("#m-4 .document a")
    assert download.value.suggested_filename == "report.pdf"
    assert Path(download.value.path()).read_bytes() == DOCUMENT

    # The redaction: redacted content and a mark; the original only after "show original".
    redacted = page.locator("#m-5")
    assert redacted.locator(".text").inner_text() == "My card is [REDACTED]"
    assert redacted.locator(".badge").inner_text() == "redacted"
    assert "4111" not in page.content()
    page.screenshot(path=artefacts / "conversation.png", full_page=True)
    with page.expect_navigation():
        redacted.locator("a.show-original").click()
    assert page.locator(".msg .text").inner_text() == "My card is 4111 1111 1111 1111"
    assert "original" in page.locator(".notice").inner_text()
    assert page.console_errors == []


def test_a_script_in_a_message_shows_as_text_and_runs_nothing(
    service: ServiceProcess, seeded: dict[str, Any], page: Any
) -> None:
    page.goto(service.url + seeded["chat"])
    page.wait_for_timeout(300)  # time for an injected handler to fire, were there one
    assert page.locator("#m-6 .text").inner_text() == SCRIPT_TEXT
    assert page.locator("main script, main img[src=x]").count() == 0
    assert page.dialogs == []


@pytest.fixture(scope="module")
def keyed(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    log = tmp_path_factory.mktemp("ui-keyed") / "service.log"
    proc = start_service(module_database_url, log, API_KEYS="first-key,second-key")
    yield proc
    proc.stop()


def test_with_api_keys_pages_need_the_key_and_login_and_logout_work(
    keyed: ServiceProcess, seeded: dict[str, Any], page: Any, artefacts: Path
) -> None:
    target = keyed.url + seeded["chat"]
    page.goto(target)
    assert page.url.startswith(keyed.url + "/ui/login")
    assert "4111" not in page.content() and "weather_lookup" not in page.content()

    page.fill("#key", "not-a-key")
    with page.expect_navigation():
        page.click("form.login button")
    assert page.locator("[role=alert]").inner_text() == "That key is not valid."
    assert page.console_errors == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    page.console_errors.clear()

    page.fill("#key", "second-key")
    page.click("form.login button")
    page.wait_for_url(target)  # back where the login was asked for
    assert page.locator("#m-1 .tool-name").inner_text() == "weather_lookup"
    cookie = next(c for c in page.context.cookies() if c["name"] == "ssb_ui")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert "second-key" not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # out of the page's scripts' reach
    page.screenshot(path=artefacts / "logged-in.png", full_page=True)

    with page.expect_navigation():
        page.click("#logout")
    assert page.url.startswith(keyed.url + "/ui/login")
    page.goto(target)
    assert page.url.startswith(keyed.url + "/ui/login")
    assert page.console_errors == []
