"""The benchmark's own servers: a durable PostgreSQL and a Redis, on free ports in temp dirs.

Never the test servers (127.0.0.1:5432 / :6379 run with fsync off and no persistence).
PostgreSQL keeps the server defaults that make a commit durable (fsync, synchronous_commit,
full_page_writes all on); only where it listens is set. Redis persists as ``persistence``
says, and :meth:`RedisServer.describe` states it for the report. Starting and stopping them
is ``tests/_servers.py``'s (the chaos suite's servers too); this module adds what the report
states and the fresh storage of each phase.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
import _servers

#: What ``--redis-persistence`` may be, and the redis-server options each one means.
REDIS_PERSISTENCE: dict[str, list[str]] = {
    "everysec": ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
    "always": ["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
    "none": ["--appendonly", "no", "--save", ""],
}
PG_DURABILITY = ("fsync", "synchronous_commit", "full_page_writes", "wal_level")


class PgServer(_servers.PgServer):
    """Server defaults; ``url`` is the ``bench`` database that :meth:`fresh` recreates."""

    def __init__(self) -> None:
        super().__init__(prefix="dq-peers-pg-")
        self.url = self.url_of("bench")

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


class RedisServer(_servers.RedisServer):
    """Persisting as ``persistence`` (a key of REDIS_PERSISTENCE) says."""

    def __init__(self, persistence: str = "everysec") -> None:
        super().__init__(*REDIS_PERSISTENCE[persistence], prefix="dq-peers-redis-")
        self.persistence = persistence

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
