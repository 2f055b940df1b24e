"""The backend interface's vocabulary: every type a backend method signature names.

The value types and the keyword option sets (``**options: Unpack[ClaimOptions]``: named,
typed and documented here once, not again in every backend's signature) are defined here;
the stored records (``dataqueue.records``) are re-exported so that a backend module imports
one namespace (``from dataqueue.backends import types as T``) instead of repeating the same
name lists. ``KEEP``, a value compared once per job on the completion path, is imported by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, TypedDict

from dataqueue._typing import Required
from dataqueue.options import JobFilters, UniqueSpec
from dataqueue.records import (
    CronScheduleRecord,
    CronStatus,
    JobEvent,
    JobRecord,
    JobStatus,
    TagQueryMode,
    WaitpointRecord,
)

__all__ = [
    "KEEP",
    "AddOptions",
    "AddedJob",
    "ClaimOptions",
    "CronInput",
    "CronScheduleRecord",
    "CronStatus",
    "FailOutcome",
    "FinishedJob",
    "Holder",
    "JobCount",
    "JobEvent",
    "JobPage",
    "JobRecord",
    "JobSearch",
    "JobStatus",
    "NextRunFn",
    "ParkOptions",
    "TagQueryMode",
    "Tags",
    "WaitpointRecord",
]

#: Who must hold a job for a write to apply: (worker id, lock version), the fence of SPEC
#: §10.2; None for a write that is not a handler's.
Holder = tuple[str, int] | None
#: Tags of a token (None: none).
Tags = tuple[str, ...] | None


class _Keep:
    """Marker: leave a stored value untouched (distinct from None, which stores JSON null)."""

    _instance: _Keep | None = None

    def __new__(cls) -> _Keep:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()

#: Connections a queue's own pool holds at most (PostgreSQL ``database_config.max_size``,
#: Redis ``redis_config.max_connections``); a call beyond them waits for a free one, up to
#: POOL_TIMEOUT_S seconds, on both backends.
DEFAULT_POOL_SIZE: Final = 10
POOL_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class AddedJob:
    id: int
    created: bool  # False when an idempotency key matched an existing job


@dataclass(frozen=True, slots=True)
class FailOutcome:
    applied: bool  # False when the caller no longer held the job (fenced off)
    will_retry: bool
    dead_letter_job_id: int | None = None


@dataclass(frozen=True, slots=True)
class CronInput:
    """A validated cron schedule to create (next_run_at computed by the caller)."""

    schedule_name: str
    cron_expression: str
    job_type: str
    payload_json: str
    max_attempts: int
    priority: int
    timeout_ms: int | None
    force_kill_on_timeout: bool
    tags: tuple[str, ...] | None
    timezone: str
    allow_overlap: bool
    retry_delay: int | None
    retry_backoff: bool | None
    retry_delay_max: int | None
    dead_letter_job_type: str | None
    next_run_at: datetime | None


#: Computes a schedule's next occurrence strictly after ``after`` (None = never again).
NextRunFn = Callable[[CronScheduleRecord, datetime], datetime | None]


# -- keyword option sets of the backend methods (``**options: Unpack[...]``) ----------------------


class AddOptions(TypedDict, total=False):
    """``add_jobs`` options.

    ``db``: a caller's transaction to enqueue in (PostgreSQL only: a psycopg connection or
    cursor of the backend's flavour; other backends refuse it). ``unique`` (None on the hot
    path): each job's uniqueness scope, in job order — a job whose key is held by a job still
    in scope is not written and gets the holder's id (``created=False``), atomically with
    respect to concurrent adds of the same key."""

    db: Any
    unique: Sequence[UniqueSpec | None] | None


class ClaimOptions(TypedDict, total=False):
    """``claim_jobs`` options: ``lease``, how long a claimed job is held before a rescuer may
    take it back; ``job_types``, claim only these types (None: any; an empty list claims
    nothing); ``group_concurrency``, at most this many processing jobs per group (None: no
    cap); ``offer``, a worker that waits for work between claims (with ``wait_for_work`` and
    its ``worker_id``) offers the slots a short claim leaves free for this long: a backend that
    can may claim new jobs for them when they become ready and hand them over with the wake-up
    (None: no offer; ``end_claims`` withdraws it)."""

    lease: Required[timedelta]
    job_types: Sequence[str] | None
    group_concurrency: int | None
    offer: timedelta | None


class ParkOptions(TypedDict):
    """``wait_job`` options: ``wait_until``, resume at this time (a time wait); ``token_id``,
    resume when this token is completed or times out; ``step_data``, the handler's memoized
    steps, stored with the parked job."""

    wait_until: datetime | None
    token_id: str | None
    step_data: dict[str, Any]


# -- read primitives for dashboards (bounded cost, whatever the size of the queue) -----------------


@dataclass(frozen=True, slots=True)
class JobCount:
    """Jobs of one type in one status, counted up to a cap (``capped`` = "at least count").

    ``blocked`` counts pending jobs still waiting on prerequisites (job ids or a tag drain)
    among those counted; ``oldest_created_at`` is the creation time of the oldest one."""

    job_type: str
    status: JobStatus
    count: int
    capped: bool
    blocked: int = 0
    oldest_created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FinishedJob:
    """A job that reached a terminal status, and when (``recent_finished``)."""

    id: int
    job_type: str
    status: JobStatus
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class JobSearch:
    """A jobs-table query: ``filters`` as in ``get_jobs`` plus statuses, a creation-time
    range (``created_gte <= created_at < created_lt``) and a substring of the last error."""

    filters: JobFilters = field(default_factory=JobFilters)
    statuses: tuple[JobStatus, ...] = ()
    created_gte: datetime | None = None
    created_lt: datetime | None = None
    error_contains: str | None = None


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of ``search_jobs``, newest first. ``next_cursor`` continues after it (None:
    nothing older can match). A page may hold fewer than ``limit`` jobs when the bounded
    scan stopped early; ``scanned`` is how many candidate jobs it examined."""

    jobs: list[JobRecord]
    next_cursor: str | None
    scanned: int
