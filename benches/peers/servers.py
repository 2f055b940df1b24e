"""The benchmark's own servers: a durable PostgreSQL and a Redis, on free ports in temp dirs.

Never the test servers (127.0.0.1:5432 / :6379 run with fsync off and no persistence).
PostgreSQL keeps the server defaults that make a commit durable (fsync, synchronous_commit,
full_page_writes all on); only where it listens is set. Redis persists as ``persistence``
says, and :meth:`RedisServer.describe` states it for the report.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

#: What ``--redis-persistence`` may be, and the redis-server options each one means.
REDIS_PERSISTENCE: dict[str, list[str]] = {
    "everysec": ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
    "always": ["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
    "none": ["--appendonly", "no", "--save", ""],
}
PG_DURABILITY = ("fsync", "synchronous_commit", "full_page_writes", "wal_level")


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


class PgServer:
    """``initdb`` into a temp dir and ``pg_ctl start`` on a free port; ``stop`` removes it."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb) on this machine")
        self.bindir = bindir
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix="dq-peers-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        # initdb refuses to run as root: run the server as Debian's postgres account then.
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._cmd("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as fh:
            fh.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
            )
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/bench"

    def _cmd(self, tool: str, *args: str) -> None:
        cmd = [os.path.join(self.bindir, tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        self._cmd("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._cmd("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def settings(self) -> dict[str, str]:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            out = {"server_version": str(version[0]).split()[0] if version else "?"}
            for name in PG_DURABILITY:
                row = conn.execute(f"SHOW {name}").fetchone()
                out[name] = str(row[0]) if row else "?"
        return out

    def describe(self) -> str:
        s = self.settings()
        return (
            f"PostgreSQL {s['server_version']} (server defaults: fsync={s['fsync']}, "
            f"synchronous_commit={s['synchronous_commit']}, "
            f"full_page_writes={s['full_page_writes']})"
        )

    def fresh(self) -> None:
        fresh_postgres(self.admin_url)


class RedisServer:
    """A redis-server of its own on a free port, persisting as ``persistence`` says."""

    def __init__(self, persistence: str = "everysec") -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("no redis-server on this machine")
        self.persistence = persistence
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix="dq-peers-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.root, "--protected-mode", "no",
                "--logfile", os.path.join(self.root, "server.log"),
                *REDIS_PERSISTENCE[self.persistence],
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1)
        end = time.monotonic() + 30
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.RedisError:
                if time.monotonic() > end or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

    def describe(self) -> str:
        import redis

        client = redis.Redis(port=self.port)
        try:
            version = client.info("server")["redis_version"]
            conf = client.config_get("appendonly")["appendonly"]
            fsync = client.config_get("appendfsync")["appendfsync"]
            save = client.config_get("save")["save"]
        finally:
            client.close()
        snapshots = f"RDB save '{save}'" if save else "no RDB snapshots"
        if conf == "yes":
            return f"Redis {version} (appendonly yes, appendfsync {fsync}; {snapshots})"
        return f"Redis {version} (no persistence: appendonly no, {snapshots})"

    def fresh(self) -> None:
        fresh_redis(self.url)


def fresh_postgres(admin_url: str) -> None:
    """An empty ``bench`` database (the previous one dropped), after a checkpoint so one
    system's dirty pages are not written out on the next one's time."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS bench WITH (FORCE)")
        conn.execute("CREATE DATABASE bench")
        conn.execute("CHECKPOINT")


def fresh_redis(url: str) -> None:
    """No keys, and the append-only file (if any) rewritten to nothing, so no system pays for
    an AOF rewrite that the previous one's writes triggered."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushall()
        if client.config_get("appendonly")["appendonly"] != "yes":
            return
        with contextlib.suppress(redis.exceptions.ResponseError):
            client.bgrewriteaof()
        end = time.monotonic() + 30
        while time.monotonic() < end:
            state = client.info("persistence")
            if not (state.get("aof_rewrite_in_progress") or state.get("aof_rewrite_scheduled")):
                break
            time.sleep(0.02)
    finally:
        client.close()
