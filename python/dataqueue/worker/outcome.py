"""What becomes of one run: failure (retry or for good), a durable wait, no handler.

The engine runs handlers; this module turns a run's end into the lifecycle decision
(``dataqueue.lifecycle.plan_failure`` from the record the worker holds — safe because every
write is fenced by its ``lock_version``) and has the backend apply it, then fires the hook.
Completions are batched by the engine (``Engine._flush``) since they are the hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from dataqueue.errors import DataQueueError
from dataqueue.lifecycle import DEFAULT_RETRY_DELAY, no_handler_message, plan_failure
from dataqueue.records import FailureReason
from dataqueue.worker.context import JobState, WaitSignal
from dataqueue.worker.execution import error_message, retry_delay, with_retries

if TYPE_CHECKING:
    from dataqueue.backends.base_async import AsyncBackend
    from dataqueue.hooks import EventEmitter

__all__ = ["Outcomes"]

log = logging.getLogger("dataqueue.worker")


class Outcomes:
    """Records the failures and waits of one worker's runs."""

    def __init__(
        self,
        backend: AsyncBackend,
        hooks: EventEmitter,
        worker_id: str,
        *,
        verbose: bool,
        report: Callable[[BaseException], None],
    ) -> None:
        self.backend = backend
        self.hooks = hooks
        self.worker_id = worker_id
        self.verbose = verbose
        self.report = report

    async def no_handler(self, state: JobState) -> None:
        job = state.job
        message = no_handler_message(job.job_type)
        try:
            await with_retries(self.backend.set_pending_reason_for_type, job.job_type, message)
        except Exception as exc:
            self.report(exc)
        await self.fail(state, DataQueueError(message), FailureReason.NO_HANDLER)

    async def fail(self, state: JobState, exc: BaseException, reason: FailureReason) -> None:
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
        plan = plan_failure(job, message, reason, retry_delay_seconds=delay)
        log.warning(
            "job %s (%s) failed: %s",
            job.id,
            job.job_type,
            message,
            exc_info=exc if self.verbose else None,
        )
        outcome = await with_retries(
            self.backend.fail_job, job.id, self.worker_id, job.lock_version, plan
        )
        if not outcome.applied:
            log.warning("job %s: failure discarded (fenced off)", job.id)
            return
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
        )
        if not ok:
            log.warning("job %s: wait discarded (fenced off)", job.id)
            return
        self.hooks.emit("job:waiting", {"job_id": job.id, "job_type": job.job_type})
