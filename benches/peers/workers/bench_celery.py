"""Celery's app on the Redis broker (no result backend) and the no-op task, run by
``celery -A bench_celery worker``; the client imports it to send."""

from __future__ import annotations

import os

from celery import Celery
from record import record

app = Celery("bench", broker=os.environ.get("BENCH_URL", "redis://localhost"))


@app.task(name="noop")
def noop(t: float) -> None:
    record(t)
