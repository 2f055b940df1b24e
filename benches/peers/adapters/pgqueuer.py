"""pgqueuer (asyncpg driver): ``Queries.enqueue`` with a scalar or with lists, ``pgq run``."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from .base import CONCURRENCY, TASK, WORKERS_DIR, Adapter


class Pgqueuer(Adapter):
    name = "pgqueuer"
    family = "postgres"
    modules = ("pgqueuer", "asyncpg")
    bulk_api = "`Queries.enqueue` with lists (one call)"
    # pgqueuer caps a worker with --max-concurrent-tasks, which must be at least twice the
    # batch size: batches of 5 keep the cap at 10 jobs at once.
    worker_note = (
        f"`pgqueuer.run(factory, max_concurrent_tasks={CONCURRENCY}, "
        f"batch_size={CONCURRENCY // 2})`, what `pgq run` does (its CLI fails in 1.6)"
    )

    async def open(self) -> None:
        import asyncpg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries

        self.conn: Any = await asyncpg.connect(self.url)
        self.queries = Queries(AsyncpgDriver(self.conn))
        await self.queries.install()

    async def close(self) -> None:
        await self.conn.close()

    async def enqueue(self, t: float) -> None:
        await self.queries.enqueue(TASK, json.dumps({"t": t}).encode())

    async def enqueue_bulk(self, ts: list[float]) -> None:
        await self.queries.enqueue(
            [TASK] * len(ts), [json.dumps({"t": t}).encode() for t in ts], [0] * len(ts)
        )

    def worker_command(self) -> list[str]:
        return [sys.executable, os.path.join(WORKERS_DIR, "bench_pgqueuer.py"), str(CONCURRENCY)]
