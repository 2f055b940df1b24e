"""arq's worker settings (``arq bench_arq.WorkerSettings``) at ``max_jobs`` 10, and a logging
config at WARNING: arq's default one logs every job at INFO, which the others do not."""

from __future__ import annotations

import os
from typing import Any

from arq.connections import RedisSettings
from record import record


async def noop(ctx: Any, t: float) -> None:
    record(t)


class WorkerSettings:
    functions = [noop]
    redis_settings = RedisSettings.from_dsn(os.environ.get("BENCH_URL", "redis://localhost"))
    max_jobs = 10


LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"level": "WARNING", "class": "logging.StreamHandler"}},
    "loggers": {"arq": {"handlers": ["stderr"], "level": "WARNING"}},
}
