"""Throwaway storage for the benches: a scratch PostgreSQL database or a fresh Redis key
prefix on the servers named by ``DATAQUEUE_TEST_PG_URL`` / ``DATAQUEUE_TEST_REDIS_URL``; the
drain clock of the benches that time a processor draining a queue, the hidden options of
their worker subprocesses, their tables' headers."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PG_URL = os.environ.get(
    "DATAQUEUE_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("DATAQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Storage:
    """A scratch database (``backend="postgres"``) or key prefix (``"redis"``); ``drop()``
    removes it."""

    def __init__(self, backend: str, tag: str = "bench") -> None:
        self.backend = backend
        self.key_prefix: str | None = None
        if backend == "postgres":
            import psycopg

            self.dbname = f"dq_{tag}_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.dbname}"')
            self.url = urlunsplit(urlsplit(PG_URL)._replace(path="/" + self.dbname))
        else:
            self.url = REDIS_URL
            self.key_prefix = f"dq{tag}_{uuid.uuid4().hex[:10]}:"

    def options(self) -> dict[str, Any]:
        return {"key_prefix": self.key_prefix} if self.key_prefix else {}

    def args(self) -> list[str]:
        """The CLI options naming this storage."""
        return ["--url", self.url] + (["--key-prefix", self.key_prefix] if self.key_prefix else [])

    def drop(self) -> None:
        if self.backend == "postgres":
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
            return
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{self.key_prefix}*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)
        client.close()


def add_worker_options(parser: argparse.ArgumentParser) -> None:
    """The hidden options with which a bench starts itself as its worker subprocess
    (``--role worker``): the storage (``Storage.args()``) and how many jobs to wait for."""
    parser.add_argument(
        "--role", choices=["main", "worker"], default="main", help=argparse.SUPPRESS
    )
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key-prefix", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)


def print_header(*columns: tuple[str, str]) -> None:
    """A text table's header, ``(title, format spec)`` per column, and a rule as wide."""
    line = " ".join(f"{title:{spec}}" for title, spec in columns)
    print(line)
    print("-" * len(line))


class DrainClock:
    """Times a processor's drain of ``n`` jobs, from the first handler start to the ``n``-th
    completion: handlers call :meth:`started` first thing, and :meth:`completed` listens to
    ``job:completed``; ``done`` is set at the ``n``-th."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.first: float | None = None
        self.last = 0.0
        self.done = asyncio.Event()

    def started(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def completed(self, _event: Any = None) -> None:
        self.count += 1
        self.last = time.perf_counter()
        if self.count >= self.n:
            self.done.set()

    @property
    def elapsed(self) -> float:
        return self.last - (self.first or self.last)
