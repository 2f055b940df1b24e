"""procrastinate (psycopg 3): ``defer_async``, ``batch_defer_async``, ``procrastinate worker``."""

from __future__ import annotations

from typing import Any

from .base import CONCURRENCY, Adapter, bin_path, import_worker_module


class Procrastinate(Adapter):
    name = "procrastinate"
    family = "postgres"
    bulk_api = "`Task.batch_defer_async` (one call)"
    worker_note = f"`procrastinate worker --concurrency {CONCURRENCY}` (async task)"

    async def open(self) -> None:
        tasks: Any = import_worker_module("bench_procrastinate")
        self.app = tasks.app
        self.task = tasks.noop
        await self.app.open_async()
        await self.app.schema_manager.apply_schema_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def enqueue(self, t: float) -> None:
        await self.task.defer_async(t=t)

    async def enqueue_bulk(self, ts: list[float]) -> None:
        await self.task.batch_defer_async(*({"t": t} for t in ts))

    def worker_command(self) -> list[str]:
        return [
            bin_path("procrastinate"), "--app=bench_procrastinate.app", "--log-level", "warning",
            "worker", "--concurrency", str(CONCURRENCY),
        ]  # fmt: skip
