"""What becomes of one run: failure (retry or for good), a durable wait, no handler.

The engine runs handlers; this module turns a run's end into the lifecycle decision
(``dataqueue.lifecycle.plan_failure`` from the record the worker holds — safe because every
write is fenced by its ``lock_version``) and has the backend apply it, then fires the hook.
Completions are batched by the engine (``Engine._flush``) since they are the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING

from dataqueue.backends.types import FailOutcome
from dataqueue.errors import DataQueueError, NonRetryable, Retry
from dataqueue.lifecycle import DEFAULT_RETRY_DELAY, no_handler_message, plan_failure
from dataqueue.records import FailureReason, JobRecord, JobStatus
from dataqueue.tasks import RetryPolicy
from dataqueue.worker.context import JobState, WaitSignal
from dataqueue.worker.execution import error_message, retry_delay, with_retries
from dataqueue.worker.joblog import error_details, log, log_failed

if TYPE_CHECKING:
    from dataqueue.backends.base_async import AsyncBackend
    from dataqueue.hooks import EventEmitter

__all__ = ["COMPLETED", "FAILED", "PARKED", "Outcomes"]


# Where each of the worker's fenced outcome writes leaves the job (for ``applied_by_me``).
COMPLETED = frozenset({JobStatus.COMPLETED})
FAILED = frozenset({JobStatus.FAILED})
PARKED = frozenset({JobStatus.WAITING, JobStatus.PENDING})  # a wait whose token was done


@dataclass(eq=False)
class Outcomes:
    """Records the failures and waits of one worker's runs."""

    backend: AsyncBackend
    hooks: EventEmitter
    worker_id: str
    _: KW_ONLY
    verbose: bool
    report: Callable[[BaseException], None]

    async def applied_by_me(
        self, job: JobRecord, statuses: frozenset[JobStatus]
    ) -> JobRecord | None:
        """A fenced outcome write was refused — after a retry, that may be because the first
        try was applied and only its reply was lost. The store tells: the lock version
        changes only when the job is claimed (or retried / reclaimed) again, and only the
        holder of that lock version could have written the outcome, so a job in the
        outcome's state with the lock version this worker held was put there by this run.
        (If another worker already claimed it again, the run's result is reported fenced.)"""
        try:
            stored = await with_retries(self.backend.get_job, job.id)
        except Exception as exc:
            self.report(exc)
            return None
        if (
            stored is None
            or stored.status not in statuses
            or stored.lock_version != job.lock_version
        ):
            return None
        log.info("job %s: outcome already applied (its reply was lost)", job.id)
        return stored

    async def no_handler(self, state: JobState) -> None:
        job = state.job
        message = no_handler_message(job.job_type)
        try:
            await with_retries(self.backend.set_pending_reason_for_type, job.job_type, message)
        except Exception as exc:
            self.report(exc)
        await self.fail(state, DataQueueError(message), FailureReason.NO_HANDLER)

    async def fail(
        self,
        state: JobState,
        exc: BaseException,
        reason: FailureReason,
        policy: RetryPolicy | None = None,
    ) -> None:
        """Record a failed run. ``NonRetryable`` (alias ``Abort``), or an exception the
        ``policy`` does not retry, fails the job for good now; ``Retry(after=...)`` retries
        after that delay instead of the backoff (it uses up the attempt like any failure)."""
        job = state.job
        message = error_message(exc)
        try:
            delay = retry_delay(
                job.attempts, job.retry_delay, job.retry_backoff, job.retry_delay_max
            )
        except DataQueueError as bad:  # a corrupt stored option must not strand the job
            log.warning(
                "job %s: cannot compute its retry delay (%s); using %d s",
                job.id,
                bad,
                DEFAULT_RETRY_DELAY,
            )
            delay = float(DEFAULT_RETRY_DELAY)
        retryable = True
        if isinstance(exc, NonRetryable):
            retryable = False
        elif isinstance(exc, Retry):
            delay = exc.after
        elif policy is not None and not policy.retries(exc):
            retryable = False
        details = error_details(exc)
        plan = plan_failure(
            job, message, reason, retry_delay_seconds=delay, retryable=retryable, details=details
        )
        log_failed(
            job,
            state.loop.time() - state.started_at,
            details["error"] if reason != FailureReason.NO_HANDLER else message,
            reason=reason,
            retry_in=plan.retry_delay_seconds,
            exc=exc if reason != FailureReason.NO_HANDLER else None,
        )
        outcome = await with_retries(
            self.backend.fail_job,
            job.id,
            self.worker_id,
            job.lock_version,
            plan,
            budget=state.lease.total_seconds(),  # like a completion: a restart must not drop it
        )
        if not outcome.applied:
            stored = await self.applied_by_me(job, FAILED)
            if stored is None:
                log.warning("job %s: failure discarded (fenced off)", job.id)
                return
            outcome = FailOutcome(
                True, stored.next_attempt_at is not None, stored.dead_letter_job_id
            )
        self.hooks.emit(
            "job:failed",
            {
                "job_id": job.id,
                "job_type": job.job_type,
                "error": exc,
                "will_retry": outcome.will_retry,
            },
        )

    async def park(self, state: JobState, signal: WaitSignal) -> None:
        job = state.job
        ok = await with_retries(
            self.backend.wait_job,
            job.id,
            self.worker_id,
            job.lock_version,
            wait_until=signal.wait_until,
            token_id=signal.token_id,
            step_data=state.step_data,
            budget=state.lease.total_seconds(),  # a dropped wait would cost the job an attempt
        )
        if not ok and await self.applied_by_me(job, PARKED) is None:
            log.warning("job %s: wait discarded (fenced off)", job.id)
            return
        self.hooks.emit("job:waiting", {"job_id": job.id, "job_type": job.job_type})
