"""Maintenance decisions over any backend (one source: ``maintenance_sync`` is generated).

The backends find and apply; what to do with what they find is decided here, with
``dataqueue.lifecycle``: a job whose worker is gone goes back to pending while attempts remain,
otherwise it fails for good with ``worker_lost`` (dead-letter routing and cascade apply). Each
write is fenced by the lock version read, so a job that changed in between is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from dataqueue.backends.base_async import AsyncBackend
from dataqueue.lifecycle import (
    MAINTENANCE_CHUNK,
    MSG_WORKER_LOST,
    FailureReason,
    JobStatus,
    plan_failure,
)

__all__ = ["cleanup_old_job_events", "cleanup_old_jobs", "reclaim_stuck_jobs"]

#: Rounds of find-and-apply in one call (each handles up to MAINTENANCE_CHUNK jobs).
_MAX_ROUNDS = 100


async def reclaim_stuck_jobs(backend: AsyncBackend, max_processing_time_minutes: float) -> int:
    """Requeue or fail the jobs of dead workers; return how many were reclaimed."""
    total = 0
    for _ in range(_MAX_ROUNDS):
        stuck = await backend.find_stuck_jobs(max_processing_time_minutes)
        requeue = [(j.id, j.lock_version) for j in stuck if j.attempts < j.max_attempts]
        total += await backend.requeue_jobs(requeue)
        for job in stuck:
            if job.attempts >= job.max_attempts:
                plan = plan_failure(
                    job,
                    MSG_WORKER_LOST,
                    FailureReason.WORKER_LOST,
                    retry_delay_seconds=0.0,
                    retryable=False,
                )
                outcome = await backend.fail_job(job.id, None, job.lock_version, plan)
                total += int(outcome.applied)
        if len(stuck) < MAINTENANCE_CHUNK:
            break
    return total


async def cleanup_old_jobs(
    backend: AsyncBackend, days_to_keep: int, statuses: Sequence[JobStatus], batch_size: int
) -> int:
    """Delete finished jobs batch after batch until a batch comes back short."""
    total = 0
    while True:
        n = await backend.cleanup_old_jobs(days_to_keep, statuses, batch_size)
        total += n
        if n < batch_size:
            return total


async def cleanup_old_job_events(backend: AsyncBackend, days_to_keep: int, batch_size: int) -> int:
    """Delete old events batch after batch (a batch counts events on every backend)."""
    total = 0
    while True:
        n = await backend.cleanup_old_job_events(days_to_keep, batch_size)
        total += n
        if n < batch_size:
            return total
