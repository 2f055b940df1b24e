"""dataqueue itself, on PostgreSQL and on Redis: ``add_job``, ``add_jobs``, ``dataqueue worker``."""

from __future__ import annotations

from typing import Any

from .base import CONCURRENCY, TASK, Adapter, bin_path


class _Dataqueue(Adapter):
    label = "dataqueue"
    distributions = ("dataqueue",)
    bulk_api = "`add_jobs` (one call)"
    worker_note = f"`dataqueue worker --concurrency {CONCURRENCY}` (async handler)"
    ours = True

    async def open(self) -> None:
        from dataqueue import init_async_job_queue

        self.queue: Any = init_async_job_queue(self.url)
        await self.queue.migrate()

    async def close(self) -> None:
        await self.queue.close()

    async def enqueue(self, t: float) -> None:
        await self.queue.add_job(TASK, {"t": t})

    async def enqueue_bulk(self, ts: list[float]) -> None:
        await self.queue.add_jobs([{"job_type": TASK, "payload": {"t": t}} for t in ts])

    def worker_command(self) -> list[str]:
        return [
            bin_path("dataqueue"), "worker", "bench_dataqueue:HANDLERS", "--url", self.url,
            "--concurrency", str(CONCURRENCY), "--log-level", "WARNING",
        ]  # fmt: skip


class DataqueuePostgres(_Dataqueue):
    name = "dataqueue-postgres"
    family = "postgres"
    distributions = ("dataqueue", "psycopg")
    modules = ("dataqueue", "psycopg", "psycopg_pool")


class DataqueueRedis(_Dataqueue):
    name = "dataqueue-redis"
    family = "redis"
    distributions = ("dataqueue", "redis", "hiredis")
    modules = ("dataqueue", "redis")
