"""Small test utilities shared by the worker tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from _worker_helpers import FAST

__all__ = ["FAST", "Gauge", "start_processing", "status_of", "wait_status", "wait_until"]


class Gauge:
    """Counts how many threads are inside ``with gauge:`` at once; ``peak`` is the maximum."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def __enter__(self) -> Gauge:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self.current -= 1


def wait_until(cond: Callable[[], Any], timeout: float = 15.0, interval: float = 0.02) -> Any:
    """Poll ``cond`` until it returns something truthy; fail the test after ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def status_of(q: Any, job_id: int) -> str:
    job = q.get_job(job_id)
    assert job is not None
    return str(job.status.value)


def wait_status(q: Any, job_id: int, *statuses: str, timeout: float = 15.0) -> Any:
    """Wait until job ``job_id`` has one of ``statuses``; return its record."""

    def check() -> Any:
        job = q.get_job(job_id)
        return job if job is not None and job.status.value in statuses else None

    return wait_until(check, timeout)


def start_processing(q: Any, make_processor: Any, handler: Any, **options: Any) -> tuple[int, Any]:
    """Add one job of type ``j``, start a processor running ``handler`` (with ``options``) in
    the background and wait until the job is processing; return the job id and processor."""
    job_id = q.add_job("j", {})
    proc = make_processor({"j": handler}, **options)
    proc.start_in_background()
    wait_status(q, job_id, "processing")
    return job_id, proc
