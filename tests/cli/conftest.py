"""Fixtures of the command-line tests: a fresh Postgres database or Redis key prefix per test,
given to the CLI as ``--url`` (and ``--key-prefix``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REDIS_URL = os.environ.get("DATAQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class CliStorage:
    """Where one test's jobs live, as command-line options and as library options."""

    backend: str
    url: str
    key_prefix: str | None = None

    @property
    def args(self) -> list[str]:
        extra = ["--key-prefix", self.key_prefix] if self.key_prefix else []
        return ["--url", self.url, *extra]

    def queue(self) -> Any:
        from dataqueue import init_job_queue

        if self.key_prefix:
            return init_job_queue(self.url, key_prefix=self.key_prefix)
        return init_job_queue(self.url)


def _delete_redis_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()


@pytest.fixture(params=["postgres", "redis"])
def cli_storage(request: pytest.FixtureRequest) -> Iterator[CliStorage]:
    if request.param == "postgres":
        from _pg import create_test_database, drop_test_database

        url = create_test_database()
        try:
            yield CliStorage("postgres", url)
        finally:
            drop_test_database(url)
    else:
        prefix = f"dqcli{uuid.uuid4().hex[:10]}:"
        try:
            yield CliStorage("redis", REDIS_URL, prefix)
        finally:
            _delete_redis_prefix(prefix[:-1])
