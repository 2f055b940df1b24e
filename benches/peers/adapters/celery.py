"""Celery (Redis broker, no result backend): ``Task.delay``; no bulk API, so the bulk
enqueue is ``group(...).apply_async()``. Concurrency 10 in one process is its thread pool."""

from __future__ import annotations

from typing import Any

from .base import CONCURRENCY, Adapter, bin_path, import_worker_module


class Celery(Adapter):
    name = "celery"
    label = "Celery"
    family = "redis"
    modules = ("celery", "redis")
    distributions = ("celery", "kombu")
    bulk_api = "none: `group(...).apply_async()`"
    worker_note = f"`celery worker --pool threads --concurrency {CONCURRENCY}`"

    async def open(self) -> None:
        self.tasks: Any = import_worker_module("bench_celery")

    async def close(self) -> None:
        self.tasks.app.close()

    async def enqueue(self, t: float) -> None:
        self.tasks.noop.delay(t)

    async def enqueue_bulk(self, ts: list[float]) -> None:
        from celery import group

        group(self.tasks.noop.s(t) for t in ts).apply_async()

    def worker_command(self) -> list[str]:
        return [
            bin_path("celery"), "-A", "bench_celery", "worker", "--pool", "threads",
            "--concurrency", str(CONCURRENCY), "--loglevel", "WARNING",
        ]  # fmt: skip
