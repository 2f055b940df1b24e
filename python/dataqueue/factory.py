"""``init_job_queue`` and ``init_async_job_queue``: build a queue from a URL or options."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataqueue._typing import Unpack
from dataqueue.config import QueueKwargs, resolve_config

if TYPE_CHECKING:
    from dataqueue.queue_async import AsyncJobQueue
    from dataqueue.queue_sync import JobQueue

__all__ = ["init_async_job_queue", "init_job_queue"]


def init_job_queue(url: str | None = None, **options: Unpack[QueueKwargs]) -> JobQueue:
    """Create a blocking :class:`~dataqueue.JobQueue`.

    The backend is chosen by the URL scheme (``postgresql://``/``postgres://`` → PostgreSQL,
    ``redis://``/``rediss://`` → Redis) or by ``backend=``; without a URL, ``database_config``,
    ``pool``, ``redis_config`` or ``client``, the ``DATAQUEUE_URL`` environment variable is
    used. Keyword options combine with a URL:

    - Postgres: ``database_config`` (connection keywords, SSL, pool sizes), ``pool`` (your own
      ``psycopg_pool.ConnectionPool``, never closed by the library), ``schema``.
    - Redis: ``redis_config`` (connection keywords, TLS), ``client`` (your own ``redis.Redis``,
      never closed by the library), ``key_prefix`` (default ``"dq:"``).

    ``verbose=True`` logs the ``dataqueue`` logger at DEBUG. Invalid or missing settings raise
    ``ConfigurationError``; a missing driver names the extra to install.
    """
    from dataqueue.queue_sync import JobQueue

    config = resolve_config(url, **options)
    return JobQueue(config.build_sync(), config)


def init_async_job_queue(url: str | None = None, **options: Unpack[QueueKwargs]) -> AsyncJobQueue:
    """Create an asyncio :class:`~dataqueue.AsyncJobQueue`; options as :func:`init_job_queue`
    (a bring-your-own ``pool`` is a ``psycopg_pool.AsyncConnectionPool``, a ``client`` a
    ``redis.asyncio.Redis``)."""
    from dataqueue.queue_async import AsyncJobQueue

    config = resolve_config(url, **options)
    return AsyncJobQueue(config.build_async(), config)
