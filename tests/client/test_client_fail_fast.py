"""Fail fast, and say why: with the default options, a backend that refuses connections and one
that accepts them but never answers both raise `SessionUnavailableError` within 15 s, with the
URL, the attempts and the last cause in the message, after WARNING logs of every retry. Both
cases run at once, so the test costs one wait of about 12 s, not two."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from strands.types.exceptions import SessionException
from strands_session_client import HTTPSessionManager, SessionUnavailableError

from tests.client.client_support import free_port

LIMIT = 15.0


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_down_and_silent_backends_raise_within_15_seconds_and_say_why(
    silent_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    outcomes: dict[str, tuple[float, BaseException | None]] = {}

    def build(name: str, url: str) -> None:
        started = time.monotonic()
        try:
            HTTPSessionManager("fail-fast", url)  # reads the session: the first request
        except BaseException as exc:
            outcomes[name] = (time.monotonic() - started, exc)
        else:
            outcomes[name] = (time.monotonic() - started, None)

    caplog.set_level(logging.WARNING, logger="strands_session_client")
    threads = [
        threading.Thread(target=build, args=("down", down)),
        threading.Thread(target=build, args=("silent", silent_server)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(LIMIT + 10)

    for name, url, cause in (
        ("down", down, "ConnectError"),
        ("silent", silent_server, "ReadTimeout"),
    ):
        elapsed, error = outcomes[name]
        assert isinstance(error, SessionUnavailableError), (name, error)
        assert isinstance(error, SessionException)
        assert elapsed < LIMIT, (name, elapsed)
        message = str(error)
        assert f"{url}/api/v1/sessions/fail-fast" in message, message
        assert "attempt(s)" in message and cause in message, message
        assert error.__cause__ is not None  # the httpx error, kept as the cause only
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert all(r.levelno == logging.WARNING for r in retries)
    assert any("ConnectError" in r.getMessage() for r in retries)
    assert all(" in " in r.getMessage() and "s" in r.getMessage() for r in retries)
