"""`strands-cli stop` signals only its own processes, whatever its pid files say.

A pid file outlives its process when the backend or its PostgreSQL is killed, and the system
may give that pid to any other program. Real processes stand in here: a stranger (`sleep`), and
processes whose command lines are those of the backend (`... -m service`) and of the data
folder's PostgreSQL (a program named `postgres` given `-D <data folder>`).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from strands_session_cli.local import LocalBackend

_SLEEP = "import time; time.sleep(60)"
# PostgreSQL sets its own signal handlers; a Python stand-in would keep an inherited "ignore
# SIGINT" (a shell's background job has one) and outlive `stop`'s fast-shutdown signal.
_POSTGRES = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_DFL); time.sleep(60)"


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(ChildProcessError):
            proc.wait()


def _start(started: list[subprocess.Popen[bytes]], args: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args)
    started.append(proc)
    return proc


def _exists(pid: int) -> bool:
    """Whether process `pid` is still there, exited but unreaped included."""
    return Path(f"/proc/{pid}").exists()


def _postmaster_file(backend: LocalBackend, pid: int) -> None:
    backend.data_dir.mkdir(parents=True)
    # The first line of postmaster.pid is the server's pid; the rest is not read.
    (backend.data_dir / "postmaster.pid").write_text(f"{pid}\n{backend.data_dir}\n")


def test_stop_never_signals_a_stranger_named_by_either_pid_file(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    backend = LocalBackend(tmp_path / "state")
    stranger = _start(processes, ["sleep", "60"])
    backend.state_dir.mkdir()
    backend.pid_file.write_text(f"{stranger.pid}\n")
    _postmaster_file(backend, stranger.pid)

    assert backend.running_pid() is None  # a stale backend pid file is forgotten
    assert not backend.pid_file.exists()
    assert backend.stop(grace=1.0) is False
    assert stranger.poll() is None  # still running: neither file made it a target


def test_stop_ends_the_backend_and_the_orphaned_postgres_of_its_data_folder(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    backend = LocalBackend(tmp_path / "state")
    served = _start(processes, [sys.executable, "-c", _SLEEP, "-m", "service"])
    backend.state_dir.mkdir()
    backend.pid_file.write_text(f"{served.pid}\n")
    postgres = tmp_path / "bin" / "postgres"
    postgres.parent.mkdir()
    postgres.symlink_to(sys.executable)
    orphan = _start(processes, [str(postgres), "-c", _POSTGRES, "-D", str(backend.data_dir)])
    _postmaster_file(backend, orphan.pid)

    assert backend.running_pid() == served.pid
    assert backend.stop(grace=10.0) is True
    # stop() waits for both (SIGTERM, then SIGINT: PostgreSQL's fast shutdown) and reaps them.
    assert not _exists(served.pid) and not _exists(orphan.pid)


def test_a_postgres_of_another_data_folder_is_left_alone(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    backend = LocalBackend(tmp_path / "state")
    postgres = tmp_path / "bin" / "postgres"
    postgres.parent.mkdir()
    postgres.symlink_to(sys.executable)
    other = _start(processes, [str(postgres), "-c", _POSTGRES, "-D", str(tmp_path / "elsewhere")])
    _postmaster_file(backend, other.pid)

    assert backend.stop(grace=1.0) is False
    assert other.poll() is None
