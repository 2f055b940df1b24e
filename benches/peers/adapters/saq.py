"""SAQ on Redis and on PostgreSQL: ``Queue.enqueue``; no bulk API, so the bulk enqueue is
``asyncio.gather`` of ``enqueue`` calls (what SAQ's own ``Queue.map`` does), a bounded number
in flight."""

from __future__ import annotations

from typing import Any

from .base import BULK_IN_FLIGHT, CONCURRENCY, TASK, Adapter, bin_path, gather_bounded


class _Saq(Adapter):
    label = "SAQ"
    modules = ("saq",)
    distributions = ("saq",)
    bulk_api = f"none: `asyncio.gather` of `Queue.enqueue` ({BULK_IN_FLIGHT} in flight)"
    worker_note = f"`saq bench_saq.settings` (concurrency {CONCURRENCY})"

    async def open(self) -> None:
        from saq import Queue

        self.queue: Any = Queue.from_url(self.url)
        await self.queue.connect()

    async def close(self) -> None:
        await self.queue.disconnect()

    async def enqueue(self, t: float) -> None:
        await self.queue.enqueue(TASK, t=t)

    async def enqueue_bulk(self, ts: list[float]) -> None:
        await gather_bounded(self.queue.enqueue(TASK, t=t) for t in ts)

    def worker_command(self) -> list[str]:
        return [bin_path("saq"), "bench_saq.settings"]


class SaqRedis(_Saq):
    name = "saq-redis"
    family = "redis"
    modules = ("saq", "redis")


class SaqPostgres(_Saq):
    name = "saq-postgres"
    family = "postgres"
    modules = ("saq", "psycopg", "psycopg_pool")
