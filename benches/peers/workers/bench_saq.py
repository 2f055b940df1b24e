"""SAQ's worker settings (``saq bench_saq.settings``): the no-op on a Redis or PostgreSQL
queue, whichever ``BENCH_URL`` names, at concurrency 10."""

from __future__ import annotations

import os
from typing import Any

from record import record
from saq import Queue


async def noop(ctx: Any, *, t: float) -> None:
    record(t)


settings = {
    "queue": Queue.from_url(os.environ.get("BENCH_URL", "redis://localhost")),
    "functions": [noop],
    "concurrency": 10,
}
