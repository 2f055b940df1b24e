"""RQ: ``Queue.enqueue``, ``Queue.enqueue_many``; RQ runs one job at a time per worker, so
concurrency 10 is its ``rq worker-pool`` of 10 workers."""

from __future__ import annotations

from typing import Any

from .base import CONCURRENCY, Adapter, bin_path

FUNC = "bench_rq.noop"


class Rq(Adapter):
    name = "rq"
    label = "RQ"
    family = "redis"
    bulk_api = "`Queue.enqueue_many` (one pipeline)"
    worker_note = f"`rq worker-pool -n {CONCURRENCY}` (10 processes, a fork per job)"

    async def open(self) -> None:
        from redis import Redis
        from rq import Queue

        self.conn: Any = Redis.from_url(self.url)
        self.queue = Queue(connection=self.conn)

    async def close(self) -> None:
        self.conn.close()

    async def enqueue(self, t: float) -> None:
        self.queue.enqueue(FUNC, t)

    async def enqueue_bulk(self, ts: list[float]) -> None:
        from rq import Queue

        self.queue.enqueue_many([Queue.prepare_data(FUNC, (t,)) for t in ts])

    def worker_command(self) -> list[str]:
        return [
            bin_path("rq"), "worker-pool", "--url", self.url, "-n", str(CONCURRENCY),
            "--logging-level", "WARNING", "default",
        ]  # fmt: skip
