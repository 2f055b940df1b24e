"""arq: ``ArqRedis.enqueue_job``; no bulk API, so the bulk enqueue is ``asyncio.gather`` of
``enqueue_job`` calls, a bounded number in flight."""

from __future__ import annotations

from typing import Any

from .base import BULK_IN_FLIGHT, CONCURRENCY, TASK, Adapter, bin_path, gather_bounded


class Arq(Adapter):
    name = "arq"
    family = "redis"
    bulk_api = f"none: `asyncio.gather` of `enqueue_job` ({BULK_IN_FLIGHT} in flight)"
    worker_note = f"`arq bench_arq.WorkerSettings` (max_jobs {CONCURRENCY}, log level WARNING)"

    async def open(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        self.pool: Any = await create_pool(RedisSettings.from_dsn(self.url))

    async def close(self) -> None:
        await self.pool.aclose()

    async def enqueue(self, t: float) -> None:
        await self.pool.enqueue_job(TASK, t)

    async def enqueue_bulk(self, ts: list[float]) -> None:
        await gather_bounded(self.pool.enqueue_job(TASK, t) for t in ts)

    def worker_command(self) -> list[str]:
        return [
            bin_path("arq"),
            "bench_arq.WorkerSettings",
            "--custom-log-dict",
            "bench_arq.LOG_CONFIG",
        ]
