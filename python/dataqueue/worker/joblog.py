"""What a worker tells its operator about each job: one line when it starts, one when it ends.

Logged to ``dataqueue.worker`` (the library is silent unless the application configures
logging; ``dataqueue worker`` shows INFO): a start and a completion at INFO, a failure that
will be retried at WARNING with the time of the next attempt, a failure for good at ERROR with
its reason. The handler's traceback goes with the failure line when DEBUG is enabled; it is
always stored in the job's error history (``error_details``).
"""

from __future__ import annotations

import logging
import traceback
from datetime import datetime, timedelta, timezone
from typing import Any

from dataqueue.records import FailureReason, JobRecord

__all__ = [
    "MAX_TRACEBACK_CHARS",
    "error_details",
    "log",
    "log_completed",
    "log_failed",
    "log_started",
]

#: The worker's logger, for every module of ``dataqueue.worker`` (one name to configure).
log: logging.Logger = logging.getLogger("dataqueue.worker")

#: Longest traceback stored in an error-history entry (its end, where the raise is, is kept).
MAX_TRACEBACK_CHARS = 16_000


def _attempt(job: JobRecord) -> str:
    return f"attempt {job.attempts}/{job.max_attempts}"


def log_started(job: JobRecord) -> None:
    log.info("job %s (%s) started, %s", job.id, job.job_type, _attempt(job))


def log_completed(job: JobRecord, seconds: float) -> None:
    log.info("job %s (%s) completed in %.3fs, %s", job.id, job.job_type, seconds, _attempt(job))


def log_failed(
    job: JobRecord,
    seconds: float | None,
    error: str,
    *,
    reason: FailureReason | None,
    retry_in: float | None,
    exc: BaseException | None,
) -> None:
    took = "" if seconds is None else f" in {seconds:.3f}s"
    trace = exc if exc is not None and log.isEnabledFor(logging.DEBUG) else None
    if retry_in is not None:
        at = datetime.now(timezone.utc) + timedelta(seconds=retry_in)
        log.warning(
            "job %s (%s) failed%s, %s: %s; will retry at %s",
            job.id,
            job.job_type,
            took,
            _attempt(job),
            error,
            at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            exc_info=trace,
        )
        return
    why = reason.value if reason is not None else "failed"
    dead = (
        f"; moved to dead-letter type {job.dead_letter_job_type!r}"
        if job.dead_letter_job_type
        else ""
    )
    log.error(
        "job %s (%s) failed for good%s, %s (%s): %s%s",
        job.id,
        job.job_type,
        took,
        _attempt(job),
        why,
        error,
        dead,
        exc_info=trace,
    )


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return (
        cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
    )


def error_details(exc: BaseException) -> dict[str, Any]:
    """The error-history fields besides ``message``: ``error`` (``KeyError: 'width'``),
    ``exception_type`` and, when the exception was raised, ``traceback``."""
    text = str(exc)
    details: dict[str, Any] = {
        "error": f"{type(exc).__name__}: {text}" if text else type(exc).__name__,
        "exception_type": _type_name(exc),
    }
    if exc.__traceback__ is not None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if len(tb) > MAX_TRACEBACK_CHARS:
            tb = "…(truncated)\n" + tb[-MAX_TRACEBACK_CHARS:]
        details["traceback"] = tb
    return details
