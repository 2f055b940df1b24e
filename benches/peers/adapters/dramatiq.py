"""Dramatiq (Redis broker): ``Actor.send``; no bulk API, so the bulk enqueue is its
``group(...).run()``, which sends the messages one by one."""

from __future__ import annotations

from typing import Any

from .base import CONCURRENCY, Adapter, bin_path, import_worker_module


class Dramatiq(Adapter):
    name = "dramatiq"
    label = "Dramatiq"
    family = "redis"
    modules = ("dramatiq", "redis")
    distributions = ("dramatiq",)
    bulk_api = "none: `group(...).run()`"
    worker_note = f"`dramatiq --processes 1 --threads {CONCURRENCY}`"

    async def open(self) -> None:
        self.tasks: Any = import_worker_module("bench_dramatiq")

    async def close(self) -> None:
        import dramatiq

        dramatiq.get_broker().close()

    async def enqueue(self, t: float) -> None:
        self.tasks.noop.send(t)

    async def enqueue_bulk(self, ts: list[float]) -> None:
        import dramatiq

        dramatiq.group(self.tasks.noop.message(t) for t in ts).run()

    def worker_command(self) -> list[str]:
        return [
            bin_path("dramatiq"), "bench_dramatiq", "--processes", "1",
            "--threads", str(CONCURRENCY),
        ]  # fmt: skip
