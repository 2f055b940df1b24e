"""Value types shared by the backends, the queue facade and the processor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from dataqueue.options import JobFilters
from dataqueue.records import CronScheduleRecord, JobRecord, JobStatus

__all__ = [
    "KEEP",
    "AddedJob",
    "CronInput",
    "FailOutcome",
    "FinishedJob",
    "JobCount",
    "JobPage",
    "JobSearch",
    "NextRunFn",
]


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
