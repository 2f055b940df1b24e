"""The exception hierarchy of dataqueue: every error the library raises on purpose."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

__all__ = [
    "Abort",
    "BackendError",
    "BackendNotSupportedError",
    "ConfigurationError",
    "CronError",
    "DataQueueError",
    "DependencyCycleError",
    "DependencyError",
    "InvalidFilterError",
    "InvalidJobError",
    "InvalidTokenError",
    "JobCancelledError",
    "JobFailedError",
    "JobLostError",
    "JobNotFoundError",
    "MigrationError",
    "NonRetryable",
    "ResultTimeoutError",
    "Retry",
    "UnknownPrerequisiteError",
]


class DataQueueError(Exception):
    """Root of every exception raised by dataqueue."""


class ConfigurationError(DataQueueError):
    """The queue, processor or supervisor was configured with invalid or missing settings."""


class BackendNotSupportedError(DataQueueError):
    """The operation exists but the chosen backend cannot do it (e.g. ``db=`` on Redis)."""


class BackendError(DataQueueError):
    """The storage backend failed in a way the caller may want to retry."""


class MigrationError(DataQueueError):
    """Applying the schema migrations failed."""


class InvalidJobError(DataQueueError, ValueError):
    """A job's options are invalid: bad type, payload, priority, run_at, tags, ..."""


class JobNotFoundError(DataQueueError, LookupError):
    """A job id that must exist does not."""


class DependencyError(InvalidJobError):
    """A job's ``depends_on`` is invalid."""


class DependencyCycleError(DependencyError):
    """The dependencies would form a cycle (a self reference is the shortest cycle)."""


class UnknownPrerequisiteError(DependencyError):
    """A prerequisite job id does not exist, or a batch placeholder points outside the batch."""


class InvalidTokenError(DataQueueError, ValueError):
    """A wait token's options are invalid (e.g. a malformed timeout)."""


class CronError(DataQueueError, ValueError):
    """A cron schedule is invalid: bad expression, unknown time zone or duplicate name."""


class InvalidFilterError(DataQueueError, ValueError):
    """A query filter has an unknown key or an invalid value."""


# -- results (``wait_for_job`` / ``handle.result()``) ---------------------------------------------


class JobFailedError(DataQueueError):
    """The awaited job failed for good (no attempt left, or a non-retryable error).

    ``error`` is the last stored error message, ``error_history`` every attempt's entry
    (``{"message", "timestamp"}``, plus ``"traceback"`` where the worker recorded one),
    ``failure_reason`` the stored reason (``handler_error``, ``timeout``, ...) and ``job`` the
    job record as read.
    """

    def __init__(self, job: Any) -> None:
        history = tuple(getattr(job, "error_history", ()) or ())
        last = history[-1] if history else {}
        self.job = job
        self.job_id: int = job.id
        self.error: str | None = last.get("message") if isinstance(last, dict) else None
        self.traceback: str | None = last.get("traceback") if isinstance(last, dict) else None
        self.error_history: tuple[dict[str, Any], ...] = history
        reason = getattr(job, "failure_reason", None)
        self.failure_reason: str | None = None if reason is None else str(reason.value)
        super().__init__(
            f"job {job.id} ({job.job_type}) failed after {job.attempts} attempt(s): "
            f"{self.error or 'no error recorded'}"
        )


class JobCancelledError(DataQueueError):
    """The awaited job was cancelled (directly, or because a prerequisite can never complete)."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.job_id: int = job.id
        super().__init__(f"job {job.id} ({job.job_type}) was cancelled")


class JobLostError(DataQueueError):
    """Raised in a handler by a call that needs the job held (``ctx.create_token``) when this
    worker no longer holds the attempt: its lease lapsed and another worker took the job over,
    or the job was retried. The run is stale; its writes change nothing (SPEC §10.2)."""

    def __init__(self, job_id: int, what: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id}: {what} refused: this worker no longer holds the job")


class ResultTimeoutError(DataQueueError, TimeoutError):
    """``wait_for_job`` / ``handle.result()`` gave up: the job had not finished in time (it
    keeps running; wait again or look it up later)."""

    def __init__(self, job_id: int, timeout: float, status: str | None) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self.status = status
        super().__init__(
            f"job {job_id} did not finish within {timeout:g} s (status {status or 'unknown'})"
        )


# -- raised by handlers to steer the retry policy -------------------------------------------------


class NonRetryable(Exception):
    """Raise from a handler to fail the job for good at once, whatever attempts remain
    (dead-letter routing and the cancellation of dependents apply as for a last attempt).
    ``raise NonRetryable("bad input") from exc`` keeps the cause in the message."""


#: The same exception under its other usual name.
Abort = NonRetryable


class Retry(Exception):
    """Raise from a handler to retry the job after ``after`` (seconds or a timedelta) instead
    of the job's backoff. The attempt counts like any failed attempt: with no attempt left the
    job fails for good (see docs/tasks.md)."""

    def __init__(self, after: float | timedelta = 0, message: str | None = None) -> None:
        seconds = after.total_seconds() if isinstance(after, timedelta) else after
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            raise InvalidJobError(
                f"Retry(after=...) must be a finite number of seconds >= 0, got {after!r}"
            )
        self.after: float = float(seconds)
        super().__init__(message or f"retry requested in {self.after:g} s")

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle re-creates an exception from its args (only the message here)
        return (type(self), (self.after, str(self)))
