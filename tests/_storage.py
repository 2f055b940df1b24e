"""A fresh, empty place for one test's jobs: its own PostgreSQL database (cloned from a migrated
template by ``tests/_pg.py``) or its own Redis key prefix, removed afterwards.

The contract fixtures (``tests/conftest.py``), the CLI tests and the dashboard tests all take
their storage from :func:`fresh_storage`.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["PG_URL", "REDIS_URL", "Storage", "fresh_storage"]

PG_URL = os.environ.get(
    "DATAQUEUE_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("DATAQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class Storage:
    """Where the current test's jobs live: a Postgres URL, or a Redis URL and key prefix."""

    backend: str
    url: str
    key_prefix: str | None = None

    def queue_options(self) -> dict[str, Any]:
        """The keyword options of ``init_job_queue(self.url, ...)``."""
        return {} if self.key_prefix is None else {"key_prefix": self.key_prefix}

    def options(self) -> dict[str, Any]:
        """``url`` and the queue options, as one mapping."""
        return {"url": self.url, **self.queue_options()}

    @property
    def args(self) -> list[str]:
        """The same place as command-line options."""
        extra = ["--key-prefix", self.key_prefix] if self.key_prefix else []
        return ["--url", self.url, *extra]

    def queue(self) -> Any:
        """A blocking queue on this storage (close it)."""
        from dataqueue import init_job_queue

        return init_job_queue(self.url, **self.queue_options())


def _delete_redis_keys(marker: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"*{marker}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()


@contextlib.contextmanager
def fresh_storage(backend: str, stem: str = "dqtest") -> Iterator[Storage]:
    """A new storage on ``backend`` ("postgres" or "redis"); Redis keys are prefixed
    ``<stem>_<random>:``."""
    if backend == "postgres":
        from _pg import create_test_database, drop_test_database

        url = create_test_database()
        try:
            yield Storage("postgres", url)
        finally:
            drop_test_database(url)
    else:
        marker = uuid.uuid4().hex[:12]
        try:
            yield Storage("redis", REDIS_URL, key_prefix=f"{stem}_{marker}:")
        finally:
            _delete_redis_keys(marker)
