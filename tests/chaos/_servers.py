"""Throwaway PostgreSQL and Redis servers for the chaos suite, on free ports in temp dirs.

The suite kills and restarts them, so it never touches the shared test servers. PostgreSQL
runs as the ``postgres`` OS user when the suite runs as root (initdb refuses root).
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return str(Path(found[0]).parent)
    initdb = shutil.which("initdb")
    return str(Path(initdb).parent) if initdb else None


def available() -> dict[str, str | None]:
    """Why a server cannot be started here (None: it can)."""
    return {
        "postgres": None if _pg_bindir() else "no PostgreSQL server binaries (initdb)",
        "redis": None if shutil.which("redis-server") else "no redis-server",
    }


class PgServer:
    """A PostgreSQL cluster of its own: ``start``, ``restart(mode)``, ``stop``."""

    def __init__(self) -> None:
        bindir = _pg_bindir()
        assert bindir is not None
        self.bindir = bindir
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix="dqchaos-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._cmd(
            "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        conf = (
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.root}'\nmax_connections = 300\n"
            "shared_buffers = 64MB\nfsync = on\nsynchronous_commit = on\n"
            "log_min_messages = warning\n"
        )
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as fh:
            fh.write(conf)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

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
        with contextlib.suppress(subprocess.CalledProcessError):
            self._cmd("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


class RedisServer:
    """A redis-server of its own, durable (AOF, fsync on every write)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix="dqchaos-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.root, "--appendonly", "yes", "--appendfsync", "always",
                "--save", "", "--protected-mode", "no", "--logfile",
                os.path.join(self.root, "server.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1)
        end = time.monotonic() + 60
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.RedisError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        client.close()

    def restart(self, mode: str = "kill") -> None:
        """A crash (SIGKILL) and a start that replays the append-only file."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL if mode == "kill" else signal.SIGTERM)
        self.proc.wait(30)
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)
