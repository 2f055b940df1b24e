"""The contract every storage backend fulfils.

The queue facade validates input (``dataqueue.options``), emits hooks and calls these methods;
the processor claims and finishes jobs through them. Backends never raise bare driver errors for
bad input: they raise ``dataqueue.errors`` exceptions. Every method that changes several rows or
keys is atomic (one transaction / one Lua script).

The sync twin ``Backend`` has the same methods without ``async``; it is generated from the
async source by ``tools/gen_sync.py`` and never edited by hand.
"""

from __future__ import annotations

import abc
import asyncio  # sync: import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from dataqueue._typing import Unpack
from dataqueue.backends import types as T
from dataqueue.backends.types import KEEP
from dataqueue.lifecycle import FailurePlan
from dataqueue.options import JobFilters, JobUpdates, NewJob

__all__ = ["AsyncBackend", "AsyncFinishListener", "current_waiter", "waiter_finished"]


# Wake-up subscriptions (``wait_for_work``) are one per waiter: two processors of one queue
# must not read one connection at once (each would steal the other's wake-ups).
def current_waiter() -> Any:
    """Who is calling ``wait_for_work``: the task (the thread in the blocking twin)."""
    return asyncio.current_task()  # sync: return threading.current_thread()


def waiter_finished(waiter: Any) -> bool:
    """Whether a waiter of ``wait_for_work`` has ended (its subscription can be closed)."""
    return waiter is None or waiter.done()  # sync: return not waiter.is_alive()


class AsyncFinishListener(abc.ABC):
    """A subscription to a queue's "jobs finished" notifications (completed, failed for good,
    cancelled), open from the moment ``listen_finished`` returns. Used by ``wait_for_job``."""

    @abc.abstractmethod
    async def wait(self, timeout: float) -> bool:
        """Block until a notification arrives or ``timeout`` seconds pass; True if one came
        (notifications queued meanwhile are consumed with it)."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class AsyncBackend(abc.ABC):
    """Storage for jobs, events, tokens and cron schedules."""

    name: str  # "postgres" or "redis"

    # -- lifecycle ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def close(self) -> None:
        """Close what the backend opened itself; a caller's pool or client stays open."""

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Bring the storage schema up to date; return the names of what was applied."""

    # -- enqueue -----------------------------------------------------------------------------
    @abc.abstractmethod
    async def add_jobs(
        self, jobs: Sequence[NewJob], **options: Unpack[T.AddOptions]
    ) -> list[T.AddedJob]:
        """Insert jobs atomically, in one round trip, and record their ``added`` events.

        ``depends_on_job_ids`` may hold batch placeholders (``-(i+1)`` = ``jobs[i]``); the
        backend plans the batch with ``dataqueue._core`` (cycles, self references, unknown
        prerequisites → ``DependencyError`` subclasses, nothing written). Results are in input
        order; an idempotency hit returns the existing id with ``created=False``. The
        options (``db``, ``unique``) are described by ``AddOptions``.
        """

    # -- read --------------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_job(self, job_id: int) -> T.JobRecord | None: ...

    async def watch_job(self, job_id: int) -> T.JobRecord | None:
        """``get_job`` for ``wait_for_job``, after ``listen_finished``: a store that notifies
        only the ends of jobs someone waits for (PostgreSQL) records the wait here, so that
        either this read sees the job finished or its finishing notifies."""
        return await self.get_job(job_id)

    @abc.abstractmethod
    async def get_jobs(
        self, filters: JobFilters, limit: int, offset: int, cursor: int | None
    ) -> list[T.JobRecord]:
        """Newest id first; ``cursor`` = return ids below it (offset ignored)."""

    @abc.abstractmethod
    async def get_jobs_by_status(
        self, status: T.JobStatus, limit: int, offset: int
    ) -> list[T.JobRecord]:
        """Newest first (created_at DESC, id DESC)."""

    @abc.abstractmethod
    async def get_all_jobs(self, limit: int, offset: int) -> list[T.JobRecord]: ...

    @abc.abstractmethod
    async def get_jobs_by_tags(
        self, tags: Sequence[str], mode: T.TagQueryMode, limit: int, offset: int
    ) -> list[T.JobRecord]: ...

    @abc.abstractmethod
    async def get_job_events(self, job_id: int) -> list[T.JobEvent]: ...

    @abc.abstractmethod
    async def get_outputs(self, job_ids: Sequence[int]) -> dict[int, Any]:
        """``{job_id: output}`` of the given jobs in one round trip (missing jobs left out;
        a job without output maps to None). Read by ``ctx.parent_outputs()``."""

    # -- dashboard reads: each bounded by its arguments, never a scan of every job ----------
    @abc.abstractmethod
    async def count_jobs(
        self, cap: int, statuses: Sequence[T.JobStatus] | None = None
    ) -> list[T.JobCount]:
        """Jobs per (job type, status) for ``statuses`` (None: all); only non-zero cells.
        ``capped``: ``count`` is a lower bound. PostgreSQL counts each cell up to ``cap`` (a
        bounded index walk); Redis keeps exact counts as it writes, so its cells are exact
        (capped only beyond 10,000 processing jobs)."""

    @abc.abstractmethod
    async def recent_finished(self, since: datetime, limit: int) -> list[T.FinishedJob]:
        """Up to ``limit`` jobs that became completed/failed/cancelled at or after ``since``,
        most recent first."""

    @abc.abstractmethod
    async def search_jobs(
        self, search: T.JobSearch, limit: int, cursor: str | None, scan_limit: int
    ) -> T.JobPage:
        """Jobs matching ``search``, newest first, examining at most about ``scan_limit``
        candidates; ``cursor`` is a previous page's ``next_cursor``."""

    @abc.abstractmethod
    async def get_jobs_by_ids(self, job_ids: Sequence[int]) -> list[T.JobRecord]:
        """The jobs with these ids that exist, in the order given (one round trip)."""

    @abc.abstractmethod
    async def get_dependents(self, job_ids: Sequence[int], limit: int) -> dict[int, list[int]]:
        """prerequisite id → ids of jobs that list it in ``depends_on_job_ids`` (at most
        ``limit`` edges in all, lowest ids first). Edges are kept until cleanup deletes a job."""

    @abc.abstractmethod
    async def get_tag_holders(
        self, tags: Sequence[str], exclude_id: int | None, limit: int
    ) -> list[int]:
        """Ids of active (pending/processing/waiting) jobs whose tags include every one of
        ``tags`` — the jobs a tag drain on ``tags`` waits for — oldest first."""

    @abc.abstractmethod
    async def get_drain_waiters(self, tags: Sequence[str], limit: int) -> list[int]:
        """Ids of pending/waiting jobs with a tag drain that a job tagged ``tags`` holds
        (their ``depends_on_tags`` is a subset of ``tags``)."""

    @abc.abstractmethod
    async def count_group_processing(self, group_id: str) -> int:
        """How many jobs of ``group_id`` are processing now (the group-concurrency count)."""

    # -- manage ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def retry_job(self, job_id: int) -> bool:
        """failed/processing → pending with a fresh attempt budget; True if it changed."""

    @abc.abstractmethod
    async def cancel_job(self, job_id: int) -> bool:
        """pending/waiting → cancelled, cascading to dependents; True if it changed."""

    @abc.abstractmethod
    async def edit_job(self, job_id: int, updates: JobUpdates) -> bool:
        """Apply updates to a pending job; True (and an ``edited`` event) if it changed."""

    @abc.abstractmethod
    async def edit_all_pending_jobs(self, filters: JobFilters, updates: JobUpdates) -> int: ...

    @abc.abstractmethod
    async def cancel_all_upcoming_jobs(self, filters: JobFilters) -> int: ...

    @abc.abstractmethod
    async def cleanup_old_jobs(
        self, days_to_keep: int, statuses: Sequence[T.JobStatus], batch_size: int
    ) -> int:
        """Delete one batch (at most ``batch_size``) of jobs in ``statuses`` that finished
        more than ``days_to_keep`` days ago, with their edges, events and tokens (and old
        finished standalone tokens); return how many jobs. ``maintenance`` loops."""

    @abc.abstractmethod
    async def cleanup_old_job_events(self, days_to_keep: int, batch_size: int) -> int:
        """Delete at most ``batch_size`` events older than ``days_to_keep`` days."""

    @abc.abstractmethod
    async def find_stuck_jobs(self, max_processing_time_minutes: float) -> list[T.JobRecord]:
        """Processing jobs whose lease expired, or locked with no sign of life for longer than
        max(N minutes, timeout_ms); at most ``lifecycle.MAINTENANCE_CHUNK`` of them."""

    @abc.abstractmethod
    async def requeue_jobs(self, jobs: Sequence[tuple[int, int]]) -> int:
        """``(job_id, lock_version)`` pairs of processing jobs back to pending (their used
        attempt stays used), each fenced by its lock version; returns how many moved."""

    # -- worker side -------------------------------------------------------------------------
    @abc.abstractmethod
    async def held_jobs(self, worker_id: str) -> list[T.JobRecord]:
        """The processing jobs locked by ``worker_id`` (a worker recovering what a claim
        whose reply was lost claimed for it)."""

    @abc.abstractmethod
    async def claim_jobs(
        self, worker_id: str, limit: int, **options: Unpack[T.ClaimOptions]
    ) -> list[T.JobRecord]:
        """Atomically claim up to ``limit`` eligible jobs in priority/FIFO order and record
        their ``processing`` events. Claiming a pending/failed job bumps ``attempts``;
        resuming a due time-wait does not. Each claim bumps ``lock_version``. The options
        (``lease``, ``job_types``, ``group_concurrency``) are described by ``ClaimOptions``."""

    @abc.abstractmethod
    async def complete_job(
        self, job_id: int, worker_id: str, lock_version: int, output: Any = KEEP
    ) -> bool:
        """Fenced: only the holder of (worker_id, lock_version) may complete; else False."""

    async def complete_jobs(self, items: Sequence[tuple[int, str, int, Any]]) -> list[bool]:
        """Complete many jobs at once: ``items`` are ``(job_id, worker_id, lock_version,
        output)`` (``output`` may be ``KEEP``); returns one fenced result per item, in order.

        The processor batches its completions through this. The default loops over
        :meth:`complete_job`; backends override it with one statement / one script.
        """
        return [await self.complete_job(j, w, v, o) for j, w, v, o in items]

    @abc.abstractmethod
    async def fail_job(
        self, job_id: int, worker_id: str | None, lock_version: int, plan: FailurePlan
    ) -> T.FailOutcome:
        """Apply a failure decided by ``lifecycle.plan_failure``: retry after
        ``plan.retry_delay_seconds``, or (None) fail terminally with the dead-letter job and the
        dependency cascade in the same transaction/script. Fenced by ``lock_version``; with a
        ``worker_id`` only that worker's processing attempt, without one any job in a status
        ``Operation.FAIL_UNFENCED`` accepts."""

    @abc.abstractmethod
    async def wait_job(
        self, job_id: int, worker_id: str, lock_version: int, **park: Unpack[T.ParkOptions]
    ) -> bool:
        """Fenced: park the caller's processing job as ``waiting`` with its ``step_data``
        (``ParkOptions``), until a time or until a token resolves (a token resolved already
        makes it pending at once), and record a ``waiting`` event; else False."""

    @abc.abstractmethod
    async def prolong_job(
        self, job_id: int, worker_id: str, lock_version: int, lease: timedelta
    ) -> bool:
        """Extend the lease (and locked_at) of a job the caller holds; records ``prolonged``."""

    @abc.abstractmethod
    async def heartbeat(self, worker_id: str, job_ids: Sequence[int], lease: timedelta) -> int:
        """Renew the leases of the caller's in-flight jobs in one statement; returns how many."""

    # The handler's own writes are fenced like its outcome (SPEC §10.2): each returns False,
    # and changes nothing, unless (worker_id, lock_version) still holds the processing job.
    @abc.abstractmethod
    async def set_progress(
        self, job_id: int, worker_id: str, lock_version: int, progress: int
    ) -> bool: ...

    @abc.abstractmethod
    async def set_output(
        self, job_id: int, worker_id: str, lock_version: int, output_json: str
    ) -> bool: ...

    @abc.abstractmethod
    async def set_step_data(
        self, job_id: int, worker_id: str, lock_version: int, step_data: dict[str, Any]
    ) -> bool: ...

    @abc.abstractmethod
    async def set_pending_reason_for_type(self, job_type: str, reason: str) -> None: ...

    @abc.abstractmethod
    async def wait_for_work(self, timeout: float, worker_id: str | None = None) -> bool:
        """Block until a job may have become claimable or ``timeout`` seconds pass; True if
        woken by a notification (Postgres LISTEN/NOTIFY, Redis blocking pop/pub-sub).
        ``worker_id``: the worker this waiter wakes, to which jobs may be handed (see
        ``ClaimOptions.offer``)."""

    async def end_claims(self, worker_id: str) -> None:
        """``worker_id`` stops claiming: withdraw its offer (``ClaimOptions.offer``) and give
        back what was handed to it and not claimed. A no-op where nothing is handed."""
        return None

    async def listen_finished(self) -> AsyncFinishListener | None:
        """Subscribe to "jobs finished" notifications; None if the backend has none (then
        ``wait_for_job`` re-reads the job on a timer)."""
        return None

    # -- tokens ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_token(
        self, job_id: int | None, timeout: timedelta | None, tags: T.Tags, holder: T.Holder = None
    ) -> T.WaitpointRecord | None:
        """A new waiting token, bound to ``job_id`` when given. With ``holder`` (worker id,
        lock version) the token is made only while that worker holds that attempt of the
        processing job (the fence of SPEC §10.2); None when it does not."""

    @abc.abstractmethod
    async def complete_token(self, token_id: str, output_json: str | None) -> bool: ...

    @abc.abstractmethod
    async def get_token(self, token_id: str) -> T.WaitpointRecord | None: ...

    @abc.abstractmethod
    async def expire_timed_out_tokens(self) -> int: ...

    # -- cron --------------------------------------------------------------------------------
    @abc.abstractmethod
    async def add_cron_job(self, schedule: T.CronInput) -> int:
        """Raise ``CronError`` if the name exists."""

    @abc.abstractmethod
    async def get_cron_job(self, cron_id: int) -> T.CronScheduleRecord | None: ...

    @abc.abstractmethod
    async def get_cron_job_by_name(self, name: str) -> T.CronScheduleRecord | None: ...

    @abc.abstractmethod
    async def list_cron_jobs(self, status: T.CronStatus | None) -> list[T.CronScheduleRecord]: ...

    @abc.abstractmethod
    async def edit_cron_job(self, cron_id: int, values: dict[str, Any]) -> bool:
        """``values`` uses column names (``payload_json`` for the payload, ``next_run_at``)."""

    @abc.abstractmethod
    async def set_cron_status(self, cron_id: int, status: T.CronStatus) -> bool: ...

    @abc.abstractmethod
    async def remove_cron_job(self, cron_id: int) -> bool: ...

    @abc.abstractmethod
    async def enqueue_due_cron_jobs(self, next_run: T.NextRunFn) -> int:
        """Enqueue each due active schedule's occurrence exactly once, even with many callers
        at once (row lock / script), honouring ``allow_overlap``; advance ``next_run_at``."""
