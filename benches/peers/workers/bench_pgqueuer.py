"""pgqueuer's no-op, run by ``pgq run bench_pgqueuer:main`` (its documented factory form)."""

from __future__ import annotations

import json
import os

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from record import record


async def main() -> PgQueuer:
    connection = await asyncpg.connect(os.environ["BENCH_URL"])
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        record(json.loads(job.payload or b"{}")["t"])

    return pgq
