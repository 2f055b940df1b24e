"""The public queue API: ``AsyncJobQueue``.

The facade is thin on purpose: it validates input with ``dataqueue.options``, calls the backend
(``dataqueue.backends.base_async.AsyncBackend``) and emits hooks. It holds no SQL and no Lua.
The queue comes in two twins, asyncio and blocking: the blocking one is generated from the
asyncio source by ``tools/gen_sync.py``; edit that source, never the generated twin.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    ParamSpec,
    TypeVar,
    cast,
)

from dataqueue import cron, maintenance_async
from dataqueue._loops import check_loop, close_on_owner_loop, running_loop  # sync: <remove>
from dataqueue._typing import Unpack
from dataqueue.backends.base_async import AsyncBackend
from dataqueue.backends.types import CronInput
from dataqueue.config import QueueConfig
from dataqueue.errors import (
    BackendError,
    BackendNotSupportedError,
    CronError,
    DependencyError,
    InvalidFilterError,
    InvalidJobError,
    InvalidTokenError,
    JobNotFoundError,
    ResultTimeoutError,
)
from dataqueue.hooks import (
    EventEmitter,
    EventName,
    Listener,
    Subscribe,
)
from dataqueue.lifecycle import (
    CLEANABLE_STATUSES,
    DEFAULT_CLEANUP_BATCH_SIZE,
    DEFAULT_CLEANUP_DAYS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_STUCK_MINUTES,
    DEFAULT_SUPERVISOR_INTERVAL,
    MAX_DAYS_TO_KEEP,
)
from dataqueue.options import (
    EDITABLE_FIELDS,
    INT64_MAX,
    MAX_BATCH_SIZE,
    MAX_NAME_LENGTH,
    UNIQUE_OPTION_NAMES,
    DependsOn,
    JobFilters,
    JobGroup,
    JobOptions,
    JobSpec,
    JobUpdates,
    NewJob,
    UniqueSpec,
    UniqueWhile,
    check_int,
    check_text,
    dump_json,
    normalize_job,
    parse_enum,
    parse_tag_filter,
    parse_token_timeout,
    parse_unique,
)
from dataqueue.records import (
    CronScheduleRecord,
    CronStatus,
    CronStatusName,
    JobEvent,
    JobRecord,
    JobStatus,
    JobStatusName,
    TagQueryMode,
    TagQueryModeName,
    WaitpointRecord,
)
from dataqueue.results import (
    RECHECK_SECONDS,
    AsyncFinishWatcher,
    in_thread,  # noqa: F401 - used by the generated sync twin
    outcome,
    wait_seconds,
)
from dataqueue.tasks import AsyncTaskDecorator, TaskRegistry

if TYPE_CHECKING:
    from dataqueue.supervisor import AsyncSupervisor
    from dataqueue.worker.context import Handler
    from dataqueue.worker.engine import ProcessorKwargs
    from dataqueue.worker.processor import AsyncProcessor

__all__ = ["AsyncJobQueue"]

P = ParamSpec("P")
R = TypeVar("R")

log: logging.Logger = logging.getLogger("dataqueue.queue")

#: Job fields of a cron schedule that ``edit_cron_job`` validates like ``edit_job`` does.
_CRON_JOB_FIELDS: Final = frozenset(EDITABLE_FIELDS) - {"run_at"}
_CRON_EDITABLE: Final = _CRON_JOB_FIELDS | {
    "cron_expression",
    "timezone",
    "allow_overlap",
    "force_kill_on_timeout",
}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _job_id(value: Any, what: str = "job id") -> int:
    return check_int(value, what, minimum=-INT64_MAX - 1, maximum=INT64_MAX)


def _page(limit: Any, offset: Any) -> tuple[int, int]:
    for name, value in (("limit", limit), ("offset", offset)):
        check_int(value, name, minimum=0, maximum=INT64_MAX, error=InvalidFilterError)
    # A store counts rows up to offset + limit in 64 bits; no page reaches past that anyway.
    return min(limit, INT64_MAX - offset), offset


def _status(value: Any) -> JobStatus:
    return parse_enum(JobStatus, value, "job status")


def _prefixed(index: int, exc: InvalidJobError) -> InvalidJobError:
    """The same exception class, its message prefixed with the batch position."""
    return type(exc)(f"jobs[{index}]: {exc}")


class AsyncJobQueue:
    """A job queue on PostgreSQL or Redis. Create one with ``init_async_job_queue``.

    Every method is a coroutine except the hook methods (``on``, ``once``, ``off``,
    ``remove_all_listeners``), ``create_processor`` and ``create_supervisor``, and the escape
    hatches ``get_pool`` / ``get_redis_client``. Use it as ``async with`` to close what the
    library opened (a pool or client you passed in is never closed).

    Processors reach the storage through ``_backend``, the hooks through ``_emitter`` and the
    resolved settings through ``_config``; these are not public API.
    """

    def __init__(
        self,
        backend: AsyncBackend,
        config: QueueConfig | None = None,
        emitter: EventEmitter | None = None,
    ) -> None:
        self._store = backend
        self._config = config
        self._emitter = emitter if emitter is not None else EventEmitter()
        self._closed = False
        self._loop = running_loop()  # sync: <remove>
        self._watcher: AsyncFinishWatcher | None = None
        self.tasks: TaskRegistry = TaskRegistry()
        """Job type → handler of every ``@task`` of this queue (give it to create_processor)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.backend_name!r}>"

    @property
    def backend_name(self) -> str:
        """``"postgres"`` or ``"redis"``."""
        return self._store.name

    @property
    def _backend(self) -> AsyncBackend:
        """The backend; refused (before anything is read or written) once the queue is
        closed (and, for the asyncio twin, from another event loop than the queue's own)."""
        if self._closed:
            raise BackendError("this queue is closed; open a new one to use the storage")
        self._loop = check_loop(self._loop)  # sync: <remove>
        return self._store

    # -- lifecycle -------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Bring the storage schema up to date (idempotent); returns what was applied."""
        applied = await self._backend.migrate()
        log.debug("migrate applied %s", applied)
        return applied

    async def close(self) -> None:
        """Close the pool or client the library opened; a caller's pool/client stays open.

        Calling it again is a no-op.
        """
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None:
            await self._watcher.close()
        await close_on_owner_loop(self._loop, self._store.close)  # sync: self._store.close()

    async def __aenter__(self) -> AsyncJobQueue:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- enqueue ---------------------------------------------------------------------------

    async def add_job(
        self,
        job_type: str,
        payload: Any = None,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        priority: int = DEFAULT_PRIORITY,
        run_at: datetime | None = None,
        timeout_ms: int | None = None,
        force_kill_on_timeout: bool = False,
        tags: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        retry_delay: int | None = None,
        retry_backoff: bool | None = None,
        retry_delay_max: int | None = None,
        dead_letter_job_type: str | None = None,
        group: JobGroup | Mapping[str, Any] | str | None = None,
        depends_on: DependsOn | Mapping[str, Any] | None = None,
        unique_key: str | None = None,
        unique_while: UniqueWhile | None = None,
        unique_for: timedelta | float | None = None,
        db: Any = None,
    ) -> int:
        """Enqueue one job and return its id.

        ``payload`` is any JSON-serialisable value. Higher ``priority`` runs first; negative
        priorities are allowed and run after priority 0. ``run_at`` must be timezone-aware
        (None = now). ``depends_on`` lists prerequisite job ids and/or tags to drain; every id
        must exist (batch placeholders are only valid in :meth:`add_jobs`). With an
        ``idempotency_key`` that already exists, the existing job's id is returned and nothing
        is written. ``unique_while="active"`` and/or ``unique_for=timedelta(...)`` make the job
        unique for a while instead: as long as a job with the same ``unique_key`` (default: the
        job type and a hash of the payload) is active / younger than ``unique_for``, its id is
        returned and nothing is written; afterwards a new job may be added (docs/tasks.md).
        ``db`` (Postgres only) is a psycopg connection or cursor: the insert then joins the
        caller's transaction (``job:added`` is emitted when this method returns, so a
        later rollback does not retract it).

        Raises ``InvalidJobError`` (or a ``DependencyError`` subclass) before writing anything.
        """
        new = normalize_job(
            JobOptions(
                job_type=job_type,
                payload=payload,
                max_attempts=max_attempts,
                priority=priority,
                run_at=run_at,
                timeout_ms=timeout_ms,
                force_kill_on_timeout=force_kill_on_timeout,
                tags=tags,
                idempotency_key=idempotency_key,
                retry_delay=retry_delay,
                retry_backoff=retry_backoff,
                retry_delay_max=retry_delay_max,
                dead_letter_job_type=dead_letter_job_type,
                group=group,
                depends_on=depends_on,
            )
        )
        placeholders = [i for i in new.depends_on_job_ids or () if i < 0]
        if placeholders:
            raise DependencyError(
                f"depends_on.job_ids: batch placeholders (negative ids {placeholders}) are only "
                "valid in add_jobs()"
            )
        unique = None
        if unique_key is not None or unique_while is not None or unique_for is not None:
            unique = [
                parse_unique(new.job_type, new.payload_json, unique_key, unique_while, unique_for)
            ]
        (added,) = await self._backend.add_jobs([new], db=db, unique=unique)
        log.debug("add_job %s -> id %s (created=%s)", new.job_type, added.id, added.created)
        self._emitter.emit(
            "job:added", {"job_id": added.id, "job_type": new.job_type, "created": added.created}
        )
        return added.id

    async def add_jobs(self, jobs: Sequence[JobOptions | JobSpec], *, db: Any = None) -> list[int]:
        """Enqueue several jobs atomically; return their ids in input order.

        Entries are :class:`~dataqueue.JobOptions` or mappings with the same keys. In
        ``depends_on.job_ids`` an entry may reference another entry of the same call with
        ``batch_dep_ref(i)``, forward references included; the batch is checked as one graph
        and a cycle or unknown prerequisite rejects the whole batch with nothing written.
        An empty list returns ``[]`` without touching the storage.
        """
        if isinstance(jobs, (str, bytes, Mapping)) or not isinstance(jobs, Sequence):
            raise InvalidJobError(f"add_jobs expects a list of jobs, got {type(jobs).__name__}")
        if not jobs:
            return []
        normalized: list[NewJob] = []
        unique: list[UniqueSpec | None] | None = None
        for index, job in enumerate(jobs):
            try:
                new = normalize_job(job)
                spec = _unique_of(job, new)
            except InvalidJobError as exc:
                raise _prefixed(index, exc) from None
            normalized.append(new)
            if spec is not None:
                if unique is None:
                    unique = [None] * index
                unique.append(spec)
            elif unique is not None:
                unique.append(None)
        added = await self._backend.add_jobs(normalized, db=db, unique=unique)
        log.debug("add_jobs %d jobs -> ids %s", len(added), [a.id for a in added])
        for new, result in zip(normalized, added, strict=True):
            self._emitter.emit(
                "job:added",
                {"job_id": result.id, "job_type": new.job_type, "created": result.created},
            )
        return [a.id for a in added]

    # -- tasks -----------------------------------------------------------------------------

    @property
    def task(self) -> AsyncTaskDecorator:
        """Make a function a task: ``@q.task`` or ``@q.task(max_attempts=5, ...)``.

        Its parameters are the payload; ``task.defer(...)`` adds a job (see
        ``dataqueue.tasks`` and docs/tasks.md). ``job_type`` (alias ``name``) defaults to
        ``module.qualname``. The enqueue options (``max_attempts``, ``priority``, ``timeout``
        in seconds or ``timeout_ms``, ``tags``, retry delays, ``dead_letter_job_type``,
        ``group``, ``unique_*``) apply to every job the task adds; ``retry_on`` /
        ``dont_retry_on`` choose which exceptions are retried.
        """
        return AsyncTaskDecorator(self)

    # -- results ---------------------------------------------------------------------------

    def _results(self) -> AsyncFinishWatcher:
        if self._watcher is None:
            self._watcher = AsyncFinishWatcher(self._backend.listen_finished)
        return self._watcher

    async def wait_for_job(self, job_id: int, timeout: float | timedelta | None = None) -> Any:
        """Wait until the job finishes and return its output.

        Raises ``JobFailedError`` (it failed for good: ``.error``, ``.error_history``),
        ``JobCancelledError``, ``JobNotFoundError``, or ``ResultTimeoutError`` once
        ``timeout`` seconds pass (None: wait for ever; the job itself is not affected).
        Woken by the backend's "jobs finished" notification, not by polling.
        """
        job_id = _job_id(job_id)
        seconds = wait_seconds(timeout)
        deadline = None if seconds is None else time.monotonic() + seconds
        watcher = self._results()
        while True:
            generation = await watcher.generation()
            job = await self._backend.watch_job(job_id)
            if job is None:
                raise JobNotFoundError(f"job {job_id} does not exist")
            done, output = outcome(job)
            if done:
                return output
            left = RECHECK_SECONDS if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise ResultTimeoutError(job_id, seconds or 0.0, job.status.value)
            await watcher.wait(generation, min(left, RECHECK_SECONDS))

    async def wait_for_job_async(  # sync: async def wait_for_job_async(
        self, job_id: int, timeout: float | timedelta | None = None
    ) -> Any:
        """:meth:`wait_for_job` under the name async code uses on a blocking ``JobQueue``
        (there it runs the wait in a thread, so the event loop stays free)."""
        wait = self.wait_for_job
        return await wait(job_id, timeout)  # sync: return await in_thread(wait, job_id, timeout)

    # -- read ------------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> JobRecord | None:
        """The job with this id, or None."""
        return await self._backend.get_job(_job_id(job_id))

    async def get_jobs(
        self,
        filters: Mapping[str, Any] | JobFilters | None = None,
        limit: int = 100,
        offset: int = 0,
        cursor: int | None = None,
    ) -> list[JobRecord]:
        """Jobs matching ``filters``, newest id first.

        Filters: ``job_type``, ``priority``, ``run_at`` (a datetime, or ``{"gt"|"gte"|"lt"|
        "lte"|"eq": datetime}``), ``tags={"values": [...], "mode": "all"|"any"|"none"|
        "exact"}``. ``cursor`` (keyset pagination) returns jobs with ids below it and ignores
        ``offset``. Unknown keys raise ``InvalidFilterError``.
        """
        parsed = JobFilters.parse(filters)
        limit, offset = _page(limit, offset)
        if cursor is not None:
            check_int(cursor, "cursor", minimum=1, maximum=INT64_MAX, error=InvalidFilterError)
        if limit == 0:
            return []
        return await self._backend.get_jobs(parsed, limit, offset, cursor)

    async def get_jobs_by_status(
        self, status: JobStatus | JobStatusName, limit: int = 100, offset: int = 0
    ) -> list[JobRecord]:
        """Jobs in ``status``, newest first."""
        parsed = _status(status)
        limit, offset = _page(limit, offset)
        if limit == 0:
            return []
        return await self._backend.get_jobs_by_status(parsed, limit, offset)

    async def get_all_jobs(self, limit: int = 100, offset: int = 0) -> list[JobRecord]:
        """All jobs, newest first."""
        limit, offset = _page(limit, offset)
        if limit == 0:
            return []
        return await self._backend.get_all_jobs(limit, offset)

    async def get_jobs_by_tags(
        self,
        tags: Sequence[str],
        mode: TagQueryMode | TagQueryModeName = "all",
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobRecord]:
        """Jobs by tag set, newest first. ``mode``: ``all`` (job has every tag), ``any`` (at
        least one), ``none`` (none of them; untagged jobs included), ``exact`` (same set).

        ``tags`` must be a non-empty list of strings (an empty query has no useful meaning).
        """
        if isinstance(tags, (str, bytes)):
            raise InvalidFilterError(f"tags must be a list of strings, got {tags!r}")
        tag_filter = parse_tag_filter({"values": tags, "mode": mode})
        if tag_filter is None:
            raise InvalidFilterError("get_jobs_by_tags needs at least one tag")
        limit, offset = _page(limit, offset)
        if limit == 0:
            return []
        return await self._backend.get_jobs_by_tags(
            tag_filter.values, tag_filter.mode, limit, offset
        )

    async def get_job_events(self, job_id: int) -> list[JobEvent]:
        """The job's recorded events, oldest first."""
        return await self._backend.get_job_events(_job_id(job_id))

    # -- manage ----------------------------------------------------------------------------

    async def retry_job(self, job_id: int) -> bool:
        """Make a ``failed`` (or ``processing``) job runnable again with a fresh attempt budget.

        Returns True if the job changed; only then is a ``retried`` event recorded and
        ``job:retried`` emitted. A retried ``processing`` job's old worker is fenced off.
        """
        changed = await self._backend.retry_job(_job_id(job_id))
        log.debug("retry_job %s -> %s", job_id, changed)
        if changed:
            self._emitter.emit("job:retried", {"job_id": job_id})
        return changed

    async def cancel_job(self, job_id: int) -> bool:
        """Cancel a ``pending`` or ``waiting`` job, and transitively every job that depends on
        it. Returns True if the job changed; only then is ``job:cancelled`` emitted."""
        changed = await self._backend.cancel_job(_job_id(job_id))
        log.debug("cancel_job %s -> %s", job_id, changed)
        if changed:
            self._emitter.emit("job:cancelled", {"job_id": job_id})
        return changed

    async def edit_job(self, job_id: int, **updates: Any) -> bool:
        """Edit a ``pending`` job; returns True if it changed (other statuses: False).

        Editable: ``payload``, ``max_attempts``, ``priority``, ``run_at`` (None = now),
        ``timeout_ms``, ``tags``, ``retry_delay``, ``retry_backoff``, ``retry_delay_max``,
        ``dead_letter_job_type`` (None clears a nullable field). Anything else raises
        ``InvalidJobError``. No updates: no-op, False.
        """
        job_id = _job_id(job_id)
        parsed = JobUpdates.parse(updates)
        if not parsed:
            return False
        changed = await self._backend.edit_job(job_id, parsed)
        log.debug("edit_job %s %s -> %s", job_id, sorted(updates), changed)
        return changed

    async def edit_all_pending_jobs(
        self, filters: Mapping[str, Any] | JobFilters | None = None, **updates: Any
    ) -> int:
        """Apply :meth:`edit_job`'s updates to every pending job matching ``filters``;
        returns how many changed."""
        parsed_filters = JobFilters.parse(filters)
        parsed = JobUpdates.parse(updates)
        if not parsed:
            return 0
        count = await self._backend.edit_all_pending_jobs(parsed_filters, parsed)
        log.debug("edit_all_pending_jobs %s -> %d", sorted(updates), count)
        return count

    async def cancel_all_upcoming_jobs(
        self, filters: Mapping[str, Any] | JobFilters | None = None
    ) -> int:
        """Cancel every ``pending`` job matching ``filters`` (waiting jobs are untouched);
        returns how many were cancelled."""
        count = await self._backend.cancel_all_upcoming_jobs(JobFilters.parse(filters))
        log.debug("cancel_all_upcoming_jobs -> %d", count)
        return count

    async def cleanup_old_jobs(
        self,
        days_to_keep: int = DEFAULT_CLEANUP_DAYS,
        *,
        statuses: Sequence[JobStatus | JobStatusName] = ("completed",),
        batch_size: int = DEFAULT_CLEANUP_BATCH_SIZE,
    ) -> int:
        """Delete jobs in ``statuses`` (terminal ones only: completed, failed, cancelled) last
        updated more than ``days_to_keep`` days ago, with their events, in batches of
        ``batch_size``; also removes orphaned tokens. Returns how many jobs were deleted."""
        days = _non_negative_int(days_to_keep, "days_to_keep", MAX_DAYS_TO_KEEP)
        batch = _positive_int(batch_size, "batch_size")
        given: Any = (statuses,) if isinstance(statuses, (str, JobStatus)) else statuses
        if not isinstance(given, (Sequence, set, frozenset)) or isinstance(given, bytes):
            raise InvalidFilterError(f"statuses must be a list of job statuses, got {statuses!r}")
        parsed = tuple(dict.fromkeys(_status(s) for s in given))
        bad = [s.value for s in parsed if s not in CLEANABLE_STATUSES]
        if bad or not parsed:
            raise InvalidFilterError(
                f"cleanup_old_jobs statuses must be completed, failed or cancelled, got "
                f"{bad or list(given)!r}"
            )
        count = await maintenance_async.cleanup_old_jobs(self._backend, days, parsed, batch)
        log.debug("cleanup_old_jobs(%s, %s) -> %d", days, [s.value for s in parsed], count)
        return count

    async def cleanup_old_job_events(
        self,
        days_to_keep: int = DEFAULT_CLEANUP_DAYS,
        *,
        batch_size: int = DEFAULT_CLEANUP_BATCH_SIZE,
    ) -> int:
        """Delete events older than ``days_to_keep`` days (and events of deleted jobs);
        returns how many were deleted."""
        days = _non_negative_int(days_to_keep, "days_to_keep", MAX_DAYS_TO_KEEP)
        batch = _positive_int(batch_size, "batch_size")
        return await maintenance_async.cleanup_old_job_events(self._backend, days, batch)

    async def reclaim_stuck_jobs(
        self, max_processing_time_minutes: float = DEFAULT_STUCK_MINUTES
    ) -> int:
        """Recover ``processing`` jobs whose worker is gone: lease expired, or locked longer
        than max(``max_processing_time_minutes``, the job's timeout). Such a job goes back to
        ``pending`` if attempts remain, else fails with reason ``worker_lost``. Returns how
        many were reclaimed."""
        minutes = _non_negative(max_processing_time_minutes, "max_processing_time_minutes")
        count = await maintenance_async.reclaim_stuck_jobs(self._backend, minutes)
        log.debug("reclaim_stuck_jobs(%s) -> %d", minutes, count)
        return count

    # -- tokens ----------------------------------------------------------------------------

    async def create_token(
        self, timeout: str | float | timedelta | None = None, tags: Sequence[str] | None = None
    ) -> WaitpointRecord:
        """Create a wait token not bound to any job and return its record (``.id`` is what
        ``complete_token`` and ``ctx.wait_for_token`` take).

        ``timeout``: ``"30s"``, ``"10m"``, ``"2h"``, ``"1d"``, seconds, or a timedelta (at most
        365 days); after it, ``expire_timed_out_tokens`` marks the token ``timed_out``.
        """
        delta = parse_token_timeout(timeout)
        token = await self._backend.create_token(None, delta, _token_tags(tags))
        assert token is not None  # only a handler's token (a holder given) can be refused
        log.debug("create_token -> %s", token.id)
        return token

    async def complete_token(self, token_id: str, data: Any = None) -> bool:
        """Complete a waiting token with ``data`` (JSON-serialisable) and resume the job
        waiting on it, if any. Returns False if the token is unknown or already finished."""
        _token_id(token_id)
        output_json = None if data is None else _token_json(data)
        return await self._backend.complete_token(token_id, output_json)

    async def get_token(self, token_id: str) -> WaitpointRecord | None:
        """The token with this id, or None."""
        _token_id(token_id)
        return await self._backend.get_token(token_id)

    async def expire_timed_out_tokens(self) -> int:
        """Mark waiting tokens past their timeout ``timed_out`` and resume their jobs;
        returns how many expired."""
        return await self._backend.expire_timed_out_tokens()

    # -- cron ------------------------------------------------------------------------------

    async def add_cron_job(
        self,
        schedule_name: str,
        cron_expression: str,
        job_type: str,
        payload: Any = None,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        priority: int = DEFAULT_PRIORITY,
        timeout_ms: int | None = None,
        force_kill_on_timeout: bool = False,
        tags: Sequence[str] | None = None,
        timezone: str = "UTC",
        allow_overlap: bool = False,
        retry_delay: int | None = None,
        retry_backoff: bool | None = None,
        retry_delay_max: int | None = None,
        dead_letter_job_type: str | None = None,
    ) -> int:
        """Create a cron schedule and return its id.

        ``cron_expression`` has 5 fields (or 6 with leading seconds), evaluated in the IANA
        ``timezone``. Each due occurrence enqueues one job with the given options (see
        :meth:`enqueue_due_cron_jobs`); with ``allow_overlap=False`` an occurrence is skipped
        while the previous job is still active. Raises ``CronError`` for a bad expression,
        time zone or a duplicate ``schedule_name``, ``InvalidJobError`` for bad job options.
        """
        if not isinstance(schedule_name, str) or not schedule_name:
            raise CronError(f"schedule_name must be a non-empty string, got {schedule_name!r}")
        if len(schedule_name) > MAX_NAME_LENGTH:
            raise CronError(f"schedule_name is longer than {MAX_NAME_LENGTH} characters")
        check_text(schedule_name, "schedule_name", CronError)
        _cron_text(cron_expression, "cron_expression")
        _cron_text(timezone, "timezone")
        cron.validate_cron_expression(cron_expression)
        cron.validate_timezone(timezone)
        _cron_bool(allow_overlap, "allow_overlap")
        job = normalize_job(
            JobOptions(
                job_type=job_type,
                payload=payload,
                max_attempts=max_attempts,
                priority=priority,
                timeout_ms=timeout_ms,
                force_kill_on_timeout=force_kill_on_timeout,
                tags=tags,
                retry_delay=retry_delay,
                retry_backoff=retry_backoff,
                retry_delay_max=retry_delay_max,
                dead_letter_job_type=dead_letter_job_type,
            )
        )
        schedule = CronInput(
            schedule_name=schedule_name,
            cron_expression=cron_expression.strip(),
            job_type=job.job_type,
            payload_json=job.payload_json,
            max_attempts=job.max_attempts,
            priority=job.priority,
            timeout_ms=job.timeout_ms,
            force_kill_on_timeout=job.force_kill_on_timeout,
            tags=job.tags,
            timezone=timezone,
            allow_overlap=allow_overlap,
            retry_delay=job.retry_delay,
            retry_backoff=job.retry_backoff,
            retry_delay_max=job.retry_delay_max,
            dead_letter_job_type=job.dead_letter_job_type,
            next_run_at=cron.next_occurrence(cron_expression, timezone, _now()),
        )
        cron_id = await self._backend.add_cron_job(schedule)
        log.debug("add_cron_job %r -> id %s", schedule_name, cron_id)
        return cron_id

    async def get_cron_job(self, cron_id: int) -> CronScheduleRecord | None:
        """The schedule with this id, or None."""
        return await self._backend.get_cron_job(_job_id(cron_id, "cron job id"))

    async def get_cron_job_by_name(self, schedule_name: str) -> CronScheduleRecord | None:
        """The schedule with this name, or None."""
        if not isinstance(schedule_name, str):
            raise CronError(f"schedule_name must be a string, got {schedule_name!r}")
        check_text(schedule_name, "schedule_name", CronError)
        return await self._backend.get_cron_job_by_name(schedule_name)

    async def list_cron_jobs(
        self, status: CronStatus | CronStatusName | None = None
    ) -> list[CronScheduleRecord]:
        """All schedules (or those in ``status``: ``active`` / ``paused``), oldest first."""
        parsed: CronStatus | None = None
        if status is not None:
            try:
                parsed = CronStatus(status)
            except (ValueError, TypeError):
                raise InvalidFilterError(
                    f"cron status must be 'active' or 'paused', got {status!r}"
                ) from None
        return await self._backend.list_cron_jobs(parsed)

    async def edit_cron_job(self, cron_id: int, **updates: Any) -> bool:
        """Edit a schedule; returns True if it exists and changed.

        Editable: ``cron_expression``, ``timezone`` (either recomputes the next run from now),
        ``payload``, ``max_attempts``, ``priority``, ``timeout_ms``, ``force_kill_on_timeout``,
        ``tags``, ``allow_overlap``, ``retry_delay``, ``retry_backoff``, ``retry_delay_max``,
        ``dead_letter_job_type``. The name is not editable.
        """
        cron_id = _job_id(cron_id, "cron job id")
        unknown = set(updates) - _CRON_EDITABLE
        if unknown:
            raise CronError(
                f"cannot edit {sorted(unknown)} of a cron schedule; editable fields are "
                f"{sorted(_CRON_EDITABLE)}"
            )
        values: dict[str, Any] = dict(
            JobUpdates.parse({k: v for k, v in updates.items() if k in _CRON_JOB_FIELDS}).values
        )
        for key in ("allow_overlap", "force_kill_on_timeout"):
            if key in updates:
                values[key] = _cron_bool(updates[key], key)
        if "cron_expression" in updates or "timezone" in updates:
            if "cron_expression" in updates:
                _cron_text(updates["cron_expression"], "cron_expression")
                cron.validate_cron_expression(updates["cron_expression"])
            if "timezone" in updates:
                _cron_text(updates["timezone"], "timezone")
                cron.validate_timezone(updates["timezone"])
            current = await self._backend.get_cron_job(cron_id)
            if current is None:
                return False
            expr = str(updates.get("cron_expression", current.cron_expression)).strip()
            tz = str(updates.get("timezone", current.timezone))
            values["cron_expression"] = expr
            values["timezone"] = tz
            values["next_run_at"] = cron.next_occurrence(expr, tz, _now())
        if not values:
            return False
        changed = await self._backend.edit_cron_job(cron_id, values)
        log.debug("edit_cron_job %s %s -> %s", cron_id, sorted(updates), changed)
        return changed

    async def pause_cron_job(self, cron_id: int) -> bool:
        """Stop a schedule from enqueueing; True if it exists and was active."""
        return await self._backend.set_cron_status(
            _job_id(cron_id, "cron job id"), CronStatus.PAUSED
        )

    async def resume_cron_job(self, cron_id: int) -> bool:
        """Let a paused schedule enqueue again; True if it exists and was paused."""
        return await self._backend.set_cron_status(
            _job_id(cron_id, "cron job id"), CronStatus.ACTIVE
        )

    async def remove_cron_job(self, cron_id: int) -> bool:
        """Delete a schedule (jobs it already enqueued are untouched); True if it existed."""
        return await self._backend.remove_cron_job(_job_id(cron_id, "cron job id"))

    async def enqueue_due_cron_jobs(self) -> int:
        """Enqueue one job for every active schedule whose next run is due (exactly once even
        with many callers), advance each schedule's next run; returns how many were enqueued.
        Processors call this themselves before claiming."""
        count = await self._backend.enqueue_due_cron_jobs(cron.next_run_for)
        log.debug("enqueue_due_cron_jobs -> %d", count)
        return count

    # -- hooks -----------------------------------------------------------------------------

    @property
    def on(self) -> Subscribe:
        """``on(event, fn)``: call ``fn(payload)`` on every ``event`` (see ``dataqueue.hooks``
        for the events and payloads); returns ``fn``. A listener's exception is logged and
        reported on ``error``; it never affects the queue or a job."""
        return self._emitter.on

    @property
    def once(self) -> Subscribe:
        """``once(event, fn)``: like :meth:`on`, for the next ``event`` only."""
        return self._emitter.once

    def off(self, event: EventName, fn: Listener) -> None:
        """Remove a listener added with :meth:`on` or :meth:`once`."""
        self._emitter.off(event, fn)

    def remove_all_listeners(self, event: EventName | None = None) -> None:
        """Remove every listener of ``event``, or of all events."""
        self._emitter.remove_all_listeners(event)

    # -- workers ---------------------------------------------------------------------------

    def create_processor(
        self, handlers: Mapping[str, Handler], **options: Unpack[ProcessorKwargs]
    ) -> AsyncProcessor:
        """A processor running ``handlers`` (``{"job_type": fn}``, or ``q.tasks``) against this
        queue; see ``dataqueue.processor`` for the options. ``retry_on`` / ``dont_retry_on``
        set the retry policy of handlers that have none of their own (tasks may);
        ``give_up_after`` (seconds, None = never) ends ``run()`` when the backend stays
        unreachable; ``claim_all_types`` claims every job type, not only the handled ones."""
        from dataqueue import processor

        return cast("AsyncProcessor", processor.create_processor(self, handlers, **options))

    def create_supervisor(
        self,
        *,
        interval: float = DEFAULT_SUPERVISOR_INTERVAL,
        stuck_jobs_timeout_minutes: float = DEFAULT_STUCK_MINUTES,
        cleanup_jobs_days_to_keep: int = DEFAULT_CLEANUP_DAYS,
        cleanup_events_days_to_keep: int = DEFAULT_CLEANUP_DAYS,
        cleanup_batch_size: int = DEFAULT_CLEANUP_BATCH_SIZE,
        reclaim_stuck_jobs: bool = True,
        expire_timed_out_tokens: bool = True,
        on_error: Callable[[BaseException], object] | None = None,
        verbose: bool = False,
    ) -> AsyncSupervisor:
        """A supervisor doing this queue's maintenance (reclaim, cleanup, token expiry); see
        ``dataqueue.supervisor`` for its options."""
        from dataqueue import supervisor

        made = supervisor.create_supervisor(
            self, interval=interval, stuck_jobs_timeout_minutes=stuck_jobs_timeout_minutes,
            cleanup_jobs_days_to_keep=cleanup_jobs_days_to_keep,
            cleanup_events_days_to_keep=cleanup_events_days_to_keep,
            cleanup_batch_size=cleanup_batch_size, reclaim_stuck_jobs=reclaim_stuck_jobs,
            expire_timed_out_tokens=expire_timed_out_tokens, on_error=on_error,
            verbose=verbose,
        )  # fmt: skip
        return cast("AsyncSupervisor", made)

    # -- escape hatches --------------------------------------------------------------------

    def get_pool(self) -> Any:
        """The psycopg connection pool (Postgres only; Redis raises
        ``BackendNotSupportedError``)."""
        if self._store.name != "postgres":
            raise BackendNotSupportedError(
                f"get_pool() is only available with the postgres backend; this queue uses "
                f"{self._store.name} (use get_redis_client())"
            )
        return cast(Any, self._store).pool

    def get_redis_client(self) -> Any:
        """The redis-py client (Redis only; Postgres raises ``BackendNotSupportedError``)."""
        if self._store.name != "redis":
            raise BackendNotSupportedError(
                f"get_redis_client() is only available with the redis backend; this queue uses "
                f"{self._store.name} (use get_pool())"
            )
        return cast(Any, self._store).client


def _unique_of(job: JobOptions | Mapping[str, Any], new: NewJob) -> UniqueSpec | None:
    """The uniqueness scope of an ``add_jobs`` entry (None for the usual entry, cheaply)."""
    if isinstance(job, JobOptions):
        key, while_, for_ = job.unique_key, job.unique_while, job.unique_for
    elif job.keys().isdisjoint(UNIQUE_OPTION_NAMES):
        return None
    else:
        key, while_, for_ = job.get("unique_key"), job.get("unique_while"), job.get("unique_for")
    return parse_unique(new.job_type, new.payload_json, key, while_, for_)


def _non_negative(value: Any, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= _MAX_MINUTES
    ):
        raise InvalidJobError(f"{what} must be a number from 0 to {_MAX_MINUTES:,}, got {value!r}")
    return value


#: Minutes a duration argument may span (as many as MAX_DAYS_TO_KEEP days).
_MAX_MINUTES: Final = MAX_DAYS_TO_KEEP * 1440


def _non_negative_int(value: Any, what: str, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidJobError(f"{what} must be a non-negative int, got {value!r}")
    if maximum is not None and value > maximum:
        raise InvalidJobError(f"{what} must be at most {maximum:,}, got {value!r}")
    return value


def _positive_int(value: Any, what: str) -> int:
    return check_int(value, what, minimum=1, maximum=MAX_BATCH_SIZE)


def _cron_text(value: Any, what: str) -> None:
    if isinstance(value, str):
        check_text(value, what, CronError)


def _token_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_LENGTH:
        raise InvalidTokenError(f"token id must be a non-empty string, got {value!r}")
    return check_text(value, "token id", InvalidTokenError)


def _cron_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise CronError(f"{what} must be a bool, got {value!r}")
    return value


def _token_tags(tags: Any) -> tuple[str, ...] | None:
    if tags is None:
        return None
    if isinstance(tags, (str, bytes)) or not isinstance(tags, (Sequence, set, frozenset)):
        raise InvalidTokenError(f"token tags must be a list of strings, got {tags!r}")
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > MAX_NAME_LENGTH:
            raise InvalidTokenError(f"token tags must be non-empty strings, got {tag!r}")
        check_text(tag, "token tag", InvalidTokenError)
    return tuple(dict.fromkeys(tags)) or None


def _token_json(data: Any) -> str:
    return dump_json(data, "token data", InvalidTokenError)
