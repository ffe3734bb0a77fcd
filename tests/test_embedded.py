"""Tests of service.embedded: a real PostgreSQL server is started in temporary folders."""

from __future__ import annotations

import os
import pathlib
import shutil
import stat
import subprocess
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
    assert dsn.startswith("postgresql://postgres@/postgres?host=")  # a Unix socket, no TCP
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
    # As root the folder is refused before initdb (it was not created here); else initdb fails.
    with pytest.raises(EmbeddedError, match=r"initdb failed|not created here"):
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


# --- privacy, symbolic links, pid files ----------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="needs another local user (runuser)")
def test_no_other_local_user_can_connect(open_dir: pathlib.Path, make_pg: Factory) -> None:
    with make_pg(open_dir / "pg") as pg:
        assert query(pg.dsn, "SHOW listen_addresses") == [("",)]  # no TCP at all
        port = query(pg.dsn, "SHOW port")[0][0]
        socket_dir = query(pg.dsn, "SHOW unix_socket_directories")[0][0]
        psql = str(find_binaries() / "psql")
        if not os.path.exists(psql):
            psql = shutil.which("psql") or "psql"
        for host in (str(socket_dir), "127.0.0.1"):
            result = subprocess.run(
                [
                    *("runuser", "-u", "nobody", "--", psql, "-X", "-h", host, "-p", str(port)),
                    *("-U", "postgres", "-d", "postgres", "-c", "SELECT 1"),
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert result.returncode != 0, (host, result.stdout)
            assert "Permission denied" in result.stderr or "refused" in result.stderr, result.stderr


def test_a_data_dir_under_a_symlink_is_refused(open_dir: pathlib.Path, make_pg: Factory) -> None:
    target = open_dir / "elsewhere"
    target.mkdir()
    (target / "precious.txt").write_text("x")
    before = {p: p.lstat() for p in (target, target / "precious.txt")}
    (open_dir / "link").symlink_to(target)
    for data_dir in (open_dir / "link", open_dir / "link" / "postgres"):
        with pytest.raises(EmbeddedError, match="symbolic link"):
            make_pg(data_dir).start()
    for path, old in before.items():
        new = path.lstat()
        assert (new.st_uid, new.st_gid, new.st_mode) == (old.st_uid, old.st_gid, old.st_mode)
    assert sorted(p.name for p in target.iterdir()) == ["precious.txt"]


@pytest.mark.skipif(os.geteuid() != 0, reason="checks the root-only path")
def test_a_folder_it_did_not_create_keeps_its_owner(
    open_dir: pathlib.Path, make_pg: Factory
) -> None:
    data_dir = open_dir / "mine"
    data_dir.mkdir(mode=0o700)
    (data_dir / "notes.txt").write_text("x")
    with pytest.raises(EmbeddedError, match="not created here"):
        make_pg(data_dir).start()
    assert data_dir.stat().st_uid == 0 and (data_dir / "notes.txt").stat().st_uid == 0


def test_a_pid_file_naming_another_process_is_never_signalled(
    open_dir: pathlib.Path, make_pg: Factory
) -> None:
    data_dir = open_dir / "pg"
    pg = make_pg(data_dir)
    pg.start()
    pid_file = data_dir / "postmaster.pid"
    original = pid_file.read_text()
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        lines = original.splitlines()
        pid_file.write_text("\n".join([str(bystander.pid), *lines[1:]]) + "\n")
        # Neither reused as a running server nor signalled on stop.
        assert make_pg(data_dir)._running_dsn() is None
        pg.stop()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
        pid_file.write_text(original)
    pg._started, pg._pid = True, int(original.splitlines()[0])
    pg.stop()  # the pid is the server's again: stopped
    assert not pid_file.exists()
