"""Real PostgreSQL for every test.

The server is TEST_DATABASE_URL when given, else the local one on 127.0.0.1:5432 when it
answers, else a throwaway server started here (service.embedded). A template database is
migrated once; each test that needs one gets its own copy.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from service import migrate
from service.app import create_app
from service.embedded import EmbeddedPostgres
from service.settings import Settings
from tests import contract
from tests.pgbouncer import through
from tests.support import (
    ServiceProcess,
    admin_execute,
    create_database,
    drop_database,
    with_database,
)

LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Set by tests/test_pgbouncer.py, which runs the HTTP tests again through a transaction-pooling
# PgBouncer on this port (LISTEN and the sweeper's lock going straight to PostgreSQL).
PGBOUNCER_PORT = os.environ.get("TEST_PGBOUNCER_PORT")


def _answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A DSN with the right to create databases."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
    elif _answers(LOCAL):
        yield LOCAL
    else:
        with EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data") as server:
            yield server.dsn


@pytest.fixture(scope="session")
def template_db(admin_dsn: str) -> Iterator[str]:
    """The name of a migrated template database."""
    name = f"sbt_template_{uuid.uuid4().hex[:8]}"
    admin_execute(admin_dsn, f'CREATE DATABASE "{name}"')
    migrate.apply(with_database(admin_dsn, name))
    yield name
    admin_execute(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(admin_dsn: str, template_db: str) -> Iterator[str]:
    """A fresh migrated database of this test's own."""
    dsn = create_database(admin_dsn, template_db)
    yield dsn
    drop_database(admin_dsn, dsn)


@pytest.fixture
def empty_database_url(admin_dsn: str) -> Iterator[str]:
    """A fresh database with no schema at all."""
    dsn = create_database(admin_dsn)
    yield dsn
    drop_database(admin_dsn, dsn)


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"migrate_on_start": False, "_env_file": None}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def app_for(dsn: str, **overrides: object) -> FastAPI:
    """The app on the database `dsn`, through PgBouncer when TEST_PGBOUNCER_PORT is set."""
    if PGBOUNCER_PORT:
        overrides = {"db_pooler": "transaction", "database_direct_url": dsn, **overrides}
        dsn = through(dsn, int(PGBOUNCER_PORT))
    return create_app(make_settings(**overrides), dsn=dsn)


@pytest.fixture
def app_factory(database_url: str) -> Callable[..., object]:
    def build(**overrides: object) -> object:
        return app_for(database_url, **overrides)

    return build


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP to the app in this process (ASGI), started against this test's database."""
    async with app_client(app_for(database_url)) as http:
        yield http


class app_client:
    """`async with app_client(app) as http`: run the app's lifespan, wait until it is ready."""

    def __init__(self, app: object) -> None:
        self.app = app

    async def __aenter__(self) -> httpx.AsyncClient:
        self._lifespan = self.app.router.lifespan_context(self.app)  # type: ignore[attr-defined]
        await self._lifespan.__aenter__()
        await self.app.state.services.ready.wait()  # type: ignore[attr-defined]
        self._http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),  # type: ignore[arg-type]
            base_url="http://test",
        )
        return self._http

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()
        await self._lifespan.__aexit__(None, None, None)


@pytest.fixture
def service_process(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start real `python -m service` processes; all are stopped at the end of the test."""
    started: list[ServiceProcess] = []

    def start(env: dict[str, str], *args: str, wait: bool = True) -> ServiceProcess:
        if PGBOUNCER_PORT and env.get("DATABASE_URL"):
            env = {
                **env,
                "DATABASE_URL": through(env["DATABASE_URL"], int(PGBOUNCER_PORT)),
                "DATABASE_DIRECT_URL": env["DATABASE_URL"],
                "DB_POOLER": "transaction",
            }
        proc = ServiceProcess(env, tmp_path / f"service-{len(started)}.log", args)
        started.append(proc)
        if wait:
            proc.wait_ready()
        return proc

    yield start
    for proc in started:
        proc.stop()


# One database and one app for the whole module (a database per test costs more than the tests
# themselves); every test works under session ids of its own (`sid`), so tests stay independent.
@pytest.fixture(scope="module")
def module_database_url(admin_dsn: str, template_db: str) -> Iterator[str]:
    dsn = create_database(admin_dsn, template_db)
    yield dsn
    drop_database(admin_dsn, dsn)


@pytest.fixture(scope="module")
async def api(module_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP to the app (ASGI) with `check_response` run on every response."""
    async with app_client(app_for(module_database_url)) as http:
        http.event_hooks["response"].append(contract.checked)
        yield http


@pytest.fixture
def sid() -> str:
    """A session id of this test's own."""
    return f"s-{uuid.uuid4().hex[:12]}"
