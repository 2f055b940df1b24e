"""Fixtures of the chaos suite: its own PostgreSQL and Redis servers (killed and restarted by
the tests, so never the shared ones), one per session and backend."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from _servers import PgServer, RedisServer, available

#: Durable (the suite crashes the servers and checks what survived), with room for the pools of
#: every worker process.
PG_CONF = (
    "max_connections = 300\nshared_buffers = 64MB\nfsync = on\nsynchronous_commit = on\n"
    "log_min_messages = warning\n"
)
REDIS_OPTIONS = ("--appendonly", "yes", "--appendfsync", "always", "--save", "")


def start_server(backend: str) -> Any:
    why = available()[backend]
    if why is not None:
        pytest.fail(f"the chaos suite needs its own {backend} server: {why}")
    server: Any = (
        PgServer(PG_CONF, prefix="dqchaos-pg-")
        if backend == "postgres"
        else RedisServer(*REDIS_OPTIONS, prefix="dqchaos-redis-")
    )
    server.start()
    return server


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, Any]]:
    """Started on first use; stopped (and their data removed) at the end of the session."""
    made: dict[str, Any] = {}
    yield made
    for server in made.values():
        server.stop()


@pytest.fixture(scope="session")
def chaos_dir() -> Iterator[str]:
    keep = os.environ.get("DQ_CHAOS_REPORT_DIR")
    if keep:
        os.makedirs(keep, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="dqchaos-") as d:
        yield d
