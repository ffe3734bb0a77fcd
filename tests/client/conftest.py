"""Fixtures of the client suite: one real `python -m service` for the whole suite.

Built on the shared machinery in tests/conftest.py and tests/support.py (`admin_dsn`,
`template_db`, `ServiceProcess`). The process is session-scoped, unlike `service_process`: every
client test uses its own session id, so one server and database serve them all, and the suite
does not pay a server start-up per test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from strands_session_client import HTTPSessionRepository

from tests.support import ServiceProcess, create_database, drop_database


@pytest.fixture(scope="session")
def client_dsn(admin_dsn: str, template_db: str) -> Iterator[str]:
    """A fresh migrated database for the client suite; dropped at the end."""
    dsn = create_database(admin_dsn, template_db, prefix="client_test")
    try:
        yield dsn
    finally:
        drop_database(admin_dsn, dsn)


@pytest.fixture(scope="session")
def client_server_url(client_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a service on the client suite's database; stopped at the end."""
    log_path = tmp_path_factory.mktemp("client_server") / "service.log"
    env = {"DATABASE_URL": client_dsn, "LOG_LEVEL": "WARNING", "API_KEYS": ""}
    server = ServiceProcess(env, log_path)
    try:
        server.wait_ready(timeout=60)
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def repo(client_server_url: str) -> Iterator[HTTPSessionRepository]:
    """A repository on the test service, with short retries."""
    with HTTPSessionRepository(client_server_url, max_retry_time=5) as repository:
        yield repository


@pytest.fixture
def session_id() -> str:
    """A session id no other test uses."""
    return f"client-{uuid.uuid4().hex}"
