"""Fixtures for the Redis backend's own tests: a fresh key prefix per test, deleted afterwards.

Server: ``DATAQUEUE_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``). ``cluster_url``
starts a private single-node Redis Cluster (all 16384 slots on one node) on a free port: on it
a script touching a key outside the slot of its KEYS fails, which proves the hash tagging.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from _servers import RedisServer
from dataqueue.backends.redis.backend_sync import RedisBackend
from dataqueue.backends.redis.config import RedisSettings

REDIS_URL = os.environ.get("DATAQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def delete_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(f"{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    p = f"dqrt_{uuid.uuid4().hex[:10]}:"
    yield p
    delete_prefix(REDIS_URL, p)


@pytest.fixture
def backend(prefix: str) -> Iterator[RedisBackend]:
    b = RedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix))
    yield b
    b.close()


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    client.close()


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too (so at most 55535)."""
    for _ in range(100):
        port = random.randint(20000, 45000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for the test cluster")


@contextlib.contextmanager
def private_redis(
    *options: str, prefix: str = "dq-redis-", port: int | None = None
) -> Iterator[tuple[str, Any]]:
    """A redis-server of this test's own (no persistence) started with ``options``; yields
    its URL and a decoding client once it answers PING, and stops it afterwards."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer("--save", "", "--appendonly", "no", *options, prefix=prefix, port=port)
    server.start()
    client: Any = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        yield server.url, client
    finally:
        client.close()
        server.stop()


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    cluster = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")  # in its dir
    with private_redis(*cluster, prefix="dq-cluster-", port=_cluster_port()) as (url, client):
        deadline = time.monotonic() + 10
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        while "cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                raise RuntimeError("the test cluster did not become ready")
            time.sleep(0.05)
        yield url
