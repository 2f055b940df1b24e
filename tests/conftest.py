"""Shared fixtures: every contract test runs once per backend x twin.

- ``q``: a fresh queue. Postgres: its own database, cloned from a migrated template by
  ``tests/_pg.py``. Redis: its own random key prefix, deleted afterwards.
- Twins: ``sync`` is a ``JobQueue``; ``async`` is an ``AsyncJobQueue`` driven through
  ``tests/_bridge.py`` (a proxy running each coroutine on a background loop), so one sync test
  body covers both.
- ``queue_factory(**options)``: another queue of the same backend x twin on the same storage
  (e.g. with a bring-your-own pool or client); closed at teardown.
- ``native``: the driver objects of the current twin (psycopg connections/pools, redis
  clients), bridged on the async twin, closed at teardown.
- ``backend_name`` / ``twin``: the current parameters.

Backends come from ``DQ_TEST_BACKENDS`` (default ``postgres,redis``; see ``tests/_variants.py``).
Servers: ``DATAQUEUE_TEST_PG_URL``, ``DATAQUEUE_TEST_REDIS_URL``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _bridge import AsyncBridge, LoopThread, unwrap
from _storage import Storage, fresh_storage
from _variants import VARIANTS


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    """One background event loop for every async-twin object of this test process."""
    lt = LoopThread()
    yield lt
    lt.stop()


@pytest.fixture(params=VARIANTS, ids=[f"{b}-{t}" for b, t in VARIANTS])
def variant(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def backend_name(variant: tuple[str, str]) -> str:
    """``"postgres"`` or ``"redis"``."""
    return variant[0]


@pytest.fixture
def twin(variant: tuple[str, str]) -> str:
    """``"sync"`` or ``"async"``."""
    return variant[1]


@pytest.fixture
def storage(backend_name: str) -> Iterator[Storage]:
    """A fresh, empty place for one test's jobs; removed afterwards."""
    with fresh_storage(backend_name) as place:
        yield place


QueueFactory = Callable[..., Any]


@pytest.fixture
def queue_factory(storage: Storage, twin: str, loop_thread: LoopThread) -> Iterator[QueueFactory]:
    """``queue_factory(**options)`` → a queue of this test's backend x twin on its storage.

    ``options`` override/extend ``url`` (and ``key_prefix`` on Redis); pass ``url=None`` to
    drop the URL (e.g. with ``pool=`` / ``client=``). Bridged arguments are unwrapped.
    """
    from dataqueue import init_async_job_queue, init_job_queue

    made: list[Any] = []

    def make(**options: Any) -> Any:
        opts = storage.options()
        opts.update({k: unwrap(v) for k, v in options.items()})
        url = opts.pop("url", None)
        if storage.backend == "redis" and "key_prefix" not in options and url is None:
            opts.setdefault("key_prefix", storage.key_prefix)
        if twin == "sync":
            queue = init_job_queue(url, **opts)
        else:
            queue = AsyncBridge(loop_thread.call(init_async_job_queue, url, **opts), loop_thread)
        made.append(queue)
        return queue

    yield make
    for queue in reversed(made):
        queue.close()


@pytest.fixture
def q(queue_factory: QueueFactory) -> Any:
    """A fresh queue on fresh storage (see the module docstring)."""
    return queue_factory()


class Native:
    """Driver objects for the current twin, closed at teardown.

    Sync twin: psycopg ``Connection`` / ``ConnectionPool``, ``redis.Redis``. Async twin: their
    asyncio counterparts, bridged (so tests call them synchronously).
    """

    def __init__(self, storage: Storage, twin: str, loop_thread: LoopThread) -> None:
        self.storage = storage
        self.twin = twin
        self.loop = loop_thread
        self._closers: list[Callable[[], Any]] = []

    def _bridge(self, obj: Any) -> Any:
        return obj if self.twin == "sync" else AsyncBridge(obj, self.loop)

    def pg_connection(self) -> Any:
        """A new psycopg connection (not autocommit: statements open a transaction)."""
        import psycopg

        if self.twin == "sync":
            conn: Any = psycopg.connect(self.storage.url)
        else:
            conn = self.loop.run(psycopg.AsyncConnection.connect(self.storage.url))
        bridged = self._bridge(conn)
        self._closers.append(bridged.close)
        return bridged

    def pg_pool(self) -> Any:
        """A new, opened psycopg pool on this test's database."""
        if self.twin == "sync":
            from psycopg_pool import ConnectionPool

            pool: Any = ConnectionPool(self.storage.url, min_size=1, max_size=4, open=True)
        else:
            from psycopg_pool import AsyncConnectionPool

            async def _open() -> Any:
                p = AsyncConnectionPool(self.storage.url, min_size=1, max_size=4, open=False)
                await p.open()
                return p

            pool = self.loop.run(_open())
        bridged = self._bridge(pool)
        self._closers.append(bridged.close)
        return bridged

    def redis_client(self) -> Any:
        """A new redis-py client for the test server."""
        if self.twin == "sync":
            import redis

            client: Any = redis.Redis.from_url(self.storage.url)
        else:
            import redis.asyncio

            client = self.loop.call(redis.asyncio.Redis.from_url, self.storage.url)
        bridged = self._bridge(client)
        self._closers.append(bridged.aclose if self.twin == "async" else bridged.close)
        return bridged

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()


@pytest.fixture
def native(storage: Storage, twin: str, loop_thread: LoopThread) -> Iterator[Native]:
    n = Native(storage, twin, loop_thread)
    yield n
    n.close()
