"""Throwaway PostgreSQL and Redis servers of their own, on free ports in temp dirs.

For what must not touch the shared test servers: the chaos suite kills and restarts these,
the Redis cluster test needs a cluster node, the peer benchmark (``benches/peers/servers.py``)
needs durable settings. PostgreSQL runs as the ``postgres`` OS user when we are root (initdb
refuses root). ``stop`` removes the server's files.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PgServer", "RedisServer", "available", "free_port", "pg_bindir"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bindir() -> str | None:
    """The newest PostgreSQL server binaries on this machine (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return str(Path(found[0]).parent)
    initdb = shutil.which("initdb")
    return str(Path(initdb).parent) if initdb else None


def available() -> dict[str, str | None]:
    """Why a server cannot be started here (None: it can)."""
    return {
        "postgres": None if pg_bindir() else "no PostgreSQL server binaries (initdb)",
        "redis": None if shutil.which("redis-server") else "no redis-server",
    }


class PgServer:
    """A PostgreSQL cluster of its own with the server defaults (durable) plus ``conf``
    (``postgresql.conf`` lines): ``start``, ``restart(mode)``, ``stop``."""

    def __init__(self, conf: str = "", prefix: str = "dq-pg-") -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb) on this machine")
        self.bindir = bindir
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix=prefix)
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._cmd(
            "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as fh:
            fh.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n{conf}"
            )
        self.admin_url = self.url_of("postgres")

    def url_of(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _cmd(self, tool: str, *args: str) -> None:
        cmd = [os.path.join(self.bindir, tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        self._cmd("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")

    def restart(self, mode: str) -> None:
        """``fast``: clean shutdown (sessions terminated); ``immediate``: a crash, with
        recovery from the WAL on start."""
        self._cmd("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")
        self.start()

    def stop(self) -> None:
        # Immediate: the files are removed next, so there is nothing to shut down cleanly for.
        with contextlib.suppress(subprocess.CalledProcessError):
            self._cmd("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def database(self, name: str) -> str:
        """Create database ``name``; returns its URL."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_of(name)


class RedisServer:
    """A redis-server of its own started with ``options`` (persistence, cluster mode, ...;
    paths are relative to its temp dir): ``start``, ``restart(mode)``, ``stop``."""

    def __init__(self, *options: str, prefix: str = "dq-redis-", port: int | None = None) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("no redis-server on this machine")
        self.options = options
        self.port = free_port() if port is None else port
        self.root = tempfile.mkdtemp(prefix=prefix)
        self.log = os.path.join(self.root, "server.log")  # a file, not a pipe nobody drains
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it answers PING (its log in the error if it does not)."""
        self.proc = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.root, "--protected-mode", "no", "--logfile", self.log,
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1)
        end = time.monotonic() + 60
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    if time.monotonic() > end or self.proc.poll() is not None:
                        self.proc.kill()
                        self.proc.wait()
                        with open(self.log, encoding="utf-8", errors="replace") as f:
                            out = f.read()
                        raise RuntimeError(f"redis-server did not start: {out[-2000:]}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def restart(self, mode: str = "kill") -> None:
        """``kill``: a crash (SIGKILL); else a clean shutdown (SIGTERM). The start replays
        the append-only file if there is one."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL if mode == "kill" else signal.SIGTERM)
        self.proc.wait(30)
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)
