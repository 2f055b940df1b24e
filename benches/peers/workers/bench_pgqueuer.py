"""pgqueuer's no-op and its worker: ``python bench_pgqueuer.py`` runs ``pgqueuer.run(main)``,
which its docs give as "what ``pgq run`` does, without the CLI" (``pgq run`` of pgqueuer 1.6
fails before starting with typer 0.29: its ``--log-level`` parser hands a str where an enum is
read), on uvloop as ``pgq run`` would."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator

import asyncpg
import pgqueuer
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from record import record


@contextlib.asynccontextmanager
async def main() -> AsyncIterator[PgQueuer]:
    """The factory, in the async-context-manager form pgqueuer 1.6 requires."""
    connection = await asyncpg.connect(os.environ["BENCH_URL"])
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        record(json.loads(job.payload or b"{}")["t"])

    try:
        yield pgq
    finally:
        await connection.close()


if __name__ == "__main__":
    # --max-concurrent-tasks must be at least twice the batch size: batches of 5 keep the
    # worker at 10 jobs at once.
    concurrency = int(sys.argv[1])
    worker = pgqueuer.run(
        "bench_pgqueuer:main", batch_size=concurrency // 2, max_concurrent_tasks=concurrency
    )
    try:
        import uvloop
    except ImportError:
        import asyncio

        asyncio.run(worker)
    else:
        uvloop.run(worker)
