"""The session backend as a local background process, without Docker.

`LocalBackend(state_dir)` starts `python -m service` (found by `locate.server`) detached from the
terminal, on the embedded PostgreSQL with its data in `state_dir/postgres`, and keeps its pid,
URL and log in `state_dir`. `stop()` ends it: SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .health import Readiness, wait_ready
from .locate import ServerNotFound, server

STATE_DIR = ".session-backend"


class LocalBackendError(RuntimeError):
    """The local backend could not be started or stopped; the message says why."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on `host:port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def _alive(pid: int) -> bool:
    # Our own child lingers as a zombie until reaped; reap it so it counts as gone.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command_line(pid: int) -> list[str] | None:
    """The arguments of process `pid`; [] when there is no such process, None when this system
    cannot tell (no /proc, or no right to read it)."""
    if not Path("/proc/self").exists():
        return None
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return []
    except OSError:
        return None
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def _is_backend(args: list[str]) -> bool:
    """Whether `args` are those of `python -m service`, as `start` runs it."""
    return any(a == "-m" and b == "service" for a, b in itertools.pairwise(args))


def _is_postmaster_of(args: list[str], data_dir: Path) -> bool:
    """Whether `args` are those of a PostgreSQL server whose data folder is `data_dir`."""
    if not args or not Path(args[0]).name.startswith("postgres"):
        return False
    wanted = {str(data_dir), os.path.realpath(data_dir)}
    return any(a in wanted or os.path.realpath(a) in wanted for a in args[1:] if a.startswith("/"))


class LocalBackend:
    """A `python -m service` process whose pid, URL, log and data live in `state_dir`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.absolute()
        self.pid_file = self.state_dir / "server.pid"
        self.url_file = self.state_dir / "server.url"
        self.log_file = self.state_dir / "server.log"
        self.data_dir = self.state_dir / "postgres"

    def running_pid(self) -> int | None:
        """The pid of the running backend, or `None` (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        # A recycled pid belongs to some other program: the pid file is stale then.
        args = _command_line(pid)
        if _alive(pid) and (args is None or _is_backend(args)):
            return pid
        self._forget()
        return None

    def url(self) -> str | None:
        """The URL the running backend was started on."""
        with contextlib.suppress(OSError):
            return self.url_file.read_text().strip() or None
        return None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the backend's log."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def start(
        self, port: int, *, cwd: Path, api_key: str | None = None, deadline: float = 60.0
    ) -> Readiness:
        """Start the backend on 127.0.0.1:`port` and wait for it to be ready.

        With `api_key` the backend requires it (API_KEYS), as the generated compose files do.
        Returns the last readiness check: ready, or up but asking for an API key.
        """
        if self.running_pid() is not None:
            raise LocalBackendError(f"a local backend is already running at {self.url()}")
        if port_in_use(port):
            raise LocalBackendError(f"port {port} is already in use; choose another with --port")
        try:
            found = server(sys.executable)
        except ServerNotFound as exc:
            raise LocalBackendError(str(exc)) from None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ)
        env.update(
            HOST="127.0.0.1",
            PORT=str(port),
            WORKERS="1",
            # Blank, not unset: the backend also reads a .env in cwd, and the environment wins.
            DATABASE_URL="",
            EMBEDDED_DATA_DIR=str(self.data_dir),
            MIGRATE_ON_START="true",
        )
        if api_key:
            env["API_KEYS"] = api_key
        # Import `service` from where it was found, whatever cwd and installs say.
        paths = [str(found.import_root), *filter(None, [os.environ.get("PYTHONPATH")])]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                [found.python, "-m", "service"],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        self.url_file.write_text(f"{url}\n")

        def alive() -> bool:
            return process.poll() is None

        result = wait_ready(url, api_key, deadline=deadline, alive=alive)
        # Up and ready, merely asking for a key (API_KEYS in the environment): that is running.
        if result.ok or result.problem == "unauthorized":
            return result
        exited = process.poll() is not None
        self.stop()
        state = "exited" if exited else f"was not ready within {deadline:g} s"
        raise LocalBackendError(
            f"the local backend {state} ({result.message})\n"
            f"last lines of {self.log_file}:\n{self.log_tail()}"
        )

    def stop(self, grace: float = 20.0) -> bool:
        """Stop the backend; False when none was running."""
        pid = self.running_pid()
        if pid is None:
            self._stop_orphaned_postgres()
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < end:
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while _alive(pid) and time.monotonic() < end + 5:
                time.sleep(0.1)
        self._forget()
        self._stop_orphaned_postgres()
        return True

    def _stop_orphaned_postgres(self, grace: float = 15.0) -> None:
        """Stop an embedded PostgreSQL left running by a backend that was killed.

        Only when the pid in `postmaster.pid` is that data folder's PostgreSQL: a stale file can
        name a pid the system has since given to an unrelated process, which must not be
        signalled (nor when this system cannot tell, without /proc)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        args = _command_line(pid)
        if not _alive(pid) or args is None or not _is_postmaster_of(args, self.data_dir):
            return
        # SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients and exits cleanly.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGINT)
        end = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < end:
            time.sleep(0.1)

    def _forget(self) -> None:
        for path in (self.pid_file, self.url_file):
            path.unlink(missing_ok=True)
