"""Tests of service.embedded: a real PostgreSQL server is started in temporary folders."""

from __future__ import annotations

import os
import pathlib
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator

import psycopg
import pytest

from service.embedded import EmbeddedError, EmbeddedPostgres, find_binaries

try:
    find_binaries()
except EmbeddedError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"no PostgreSQL binaries: {exc}", allow_module_level=True)

# Each start/stop takes about a second; a hung server must not hang the run.
pytestmark = pytest.mark.timeout(60)

Factory = Callable[[pathlib.Path], EmbeddedPostgres]


@pytest.fixture
def open_dir() -> Iterator[pathlib.Path]:
    """A temp folder any user may traverse (pytest's tmp_path lies below a 0700 folder)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="embedded-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_pg() -> Iterator[Factory]:
    """Build EmbeddedPostgres instances that are all stopped at teardown, even on failure."""
    created: list[EmbeddedPostgres] = []

    def make(data_dir: pathlib.Path) -> EmbeddedPostgres:
        pg = EmbeddedPostgres(data_dir)
        created.append(pg)
        return pg

    yield make
    for pg in reversed(created):
        pg.stop()


def query(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def test_find_binaries_has_initdb() -> None:
    bin_dir = find_binaries()
    assert (bin_dir / "initdb").is_file()
    assert os.access(bin_dir / "pg_ctl", os.X_OK)


def test_data_survives_restart(open_dir: pathlib.Path, make_pg: Factory) -> None:
    data_dir = open_dir / "proj" / ".data" / "postgres"
    pg = make_pg(data_dir)
    dsn = pg.start()
    assert dsn.startswith("postgresql://postgres@127.0.0.1:")
    assert pg.dsn == dsn
    assert (data_dir / "PG_VERSION").is_file()
    assert query(dsn, "SELECT 1") == [(1,)]
    query(dsn, "CREATE TABLE kept (v text)")
    query(dsn, "INSERT INTO kept VALUES ('hello')")
    pg.stop()
    pg.stop()  # idempotent
    assert not (data_dir / "postmaster.pid").exists()
    with pytest.raises(EmbeddedError):
        _ = pg.dsn

    with make_pg(data_dir) as again:
        assert query(again.dsn, "SELECT v FROM kept") == [("hello",)]


def test_running_server_is_reused_and_left_running(
    open_dir: pathlib.Path, make_pg: Factory
) -> None:
    data_dir = open_dir / "pg"
    owner = make_pg(data_dir)
    dsn = owner.start()
    guest = make_pg(data_dir)
    assert guest.start() == dsn
    guest.stop()  # did not start it, so must not stop it
    assert query(dsn, "SELECT 2") == [(2,)]
    owner.stop()
    assert not (data_dir / "postmaster.pid").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="checks the root-only path")
def test_private_parent_as_root_keeps_modes(tmp_path: pathlib.Path, make_pg: Factory) -> None:
    private = tmp_path / "x700"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    project = private / "proj"
    project.mkdir()
    before = {p: p.stat() for p in (tmp_path, private, project)}

    with make_pg(project / ".data" / "postgres") as pg:
        assert query(pg.dsn, "SELECT current_user") == [("postgres",)]

    for path, old in before.items():
        new = path.stat()
        assert stat.S_IMODE(new.st_mode) == stat.S_IMODE(old.st_mode), path
        assert (new.st_uid, new.st_gid) == (old.st_uid, old.st_gid), path
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    # Only the data dir itself was handed to the server's user.
    assert (project / ".data").stat().st_uid == 0
    assert (project / ".data" / "postgres").stat().st_uid != 0


def test_long_path_gets_short_socket_dir(open_dir: pathlib.Path, make_pg: Factory) -> None:
    data_dir = open_dir / ("long-" * 25) / "postgres"
    with make_pg(data_dir) as pg:
        assert query(pg.dsn, "SELECT 3") == [(3,)]
        socket_dirs = query(pg.dsn, "SHOW unix_socket_directories")[0][0]
        assert isinstance(socket_dirs, str)
        assert socket_dirs.startswith(tempfile.gettempdir())
        assert len(socket_dirs) < 100


def test_failure_is_a_clear_error(open_dir: pathlib.Path, make_pg: Factory) -> None:
    data_dir = open_dir / "not-empty"
    data_dir.mkdir()
    (data_dir / "stray.txt").write_text("not a cluster")
    with pytest.raises(EmbeddedError, match="initdb failed"):
        make_pg(data_dir).start()


@pytest.mark.skipif(os.geteuid() != 0, reason="checks the root-only path")
def test_runuser_fallback_without_setpriv(
    open_dir: pathlib.Path, make_pg: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        "service.embedded.shutil.which",
        lambda name, *a, **k: None if name == "setpriv" else real_which(name, *a, **k),
    )
    with make_pg(open_dir / "pg") as pg:
        assert query(pg.dsn, "SELECT 4") == [(4,)]
