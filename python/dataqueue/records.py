"""Records returned by the queue (frozen dataclasses) and the enums they use."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "CronScheduleRecord",
    "CronStatus",
    "FailureReason",
    "JobEvent",
    "JobEventType",
    "JobRecord",
    "JobStatus",
    "TagQueryMode",
    "TokenStatus",
    "WaitpointRecord",
]


class JobStatus(str, enum.Enum):
    """Where a job is in its life cycle (``waiting`` = parked on a wait or token)."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    WAITING = "waiting"


#: Statuses in which a job still counts as active (blocks tag drains, cron overlap).
ACTIVE_STATUSES: tuple[JobStatus, ...] = (
    JobStatus.PENDING,
    JobStatus.PROCESSING,
    JobStatus.WAITING,
)


class JobEventType(str, enum.Enum):
    """The kind of an entry in a job's stored event history (``get_job_events``)."""

    ADDED = "added"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRIED = "retried"
    EDITED = "edited"
    PROLONGED = "prolonged"
    WAITING = "waiting"


class FailureReason(str, enum.Enum):
    """Why an attempt failed, as stored on the job and in its ``failed`` event."""

    HANDLER_ERROR = "handler_error"
    TIMEOUT = "timeout"
    NO_HANDLER = "no_handler"
    WORKER_LOST = "worker_lost"


class TagQueryMode(str, enum.Enum):
    """How ``get_jobs_by_tags`` / a ``tags`` filter compares tag sets (set semantics)."""

    ALL = "all"
    ANY = "any"
    NONE = "none"
    EXACT = "exact"


class TokenStatus(str, enum.Enum):
    """The state of a waitpoint token (``create_token`` / ``complete_token``)."""

    WAITING = "waiting"
    COMPLETED = "completed"
    TIMED_OUT = "timed_out"


class CronStatus(str, enum.Enum):
    """Whether a cron schedule enqueues its occurrences (``active``) or not (``paused``)."""

    ACTIVE = "active"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job, as stored. Times are timezone-aware UTC datetimes."""

    id: int
    job_type: str
    payload: Any
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    run_at: datetime
    priority: int = 0
    attempts: int = 0
    max_attempts: int = 3
    locked_at: datetime | None = None
    locked_by: str | None = None
    lock_version: int = 0  # bumped by every claim; the fencing token of SPEC §10.2
    lease_expires_at: datetime | None = None
    next_attempt_at: datetime | None = None
    pending_reason: str | None = None
    error_history: tuple[dict[str, Any], ...] = ()
    timeout_ms: int | None = None
    force_kill_on_timeout: bool = False
    failure_reason: FailureReason | None = None
    completed_at: datetime | None = None
    started_at: datetime | None = None
    last_retried_at: datetime | None = None
    last_failed_at: datetime | None = None
    last_cancelled_at: datetime | None = None
    tags: tuple[str, ...] | None = None
    idempotency_key: str | None = None
    wait_until: datetime | None = None
    wait_token_id: str | None = None
    step_data: dict[str, Any] | None = None
    progress: int | None = None
    output: Any = None
    retry_delay: int | None = None
    retry_backoff: bool | None = None
    retry_delay_max: int | None = None
    dead_letter_job_type: str | None = None
    dead_lettered_at: datetime | None = None
    dead_letter_job_id: int | None = None
    group_id: str | None = None
    group_tier: str | None = None
    depends_on_job_ids: tuple[int, ...] | None = None
    depends_on_tags: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: int
    job_id: int
    event_type: JobEventType
    created_at: datetime
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class WaitpointRecord:
    id: str
    job_id: int | None
    status: TokenStatus
    output: Any
    timeout_at: datetime | None
    created_at: datetime
    completed_at: datetime | None
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class CronScheduleRecord:
    id: int
    schedule_name: str
    cron_expression: str
    job_type: str
    payload: Any
    max_attempts: int
    priority: int
    timeout_ms: int | None
    force_kill_on_timeout: bool
    tags: tuple[str, ...] | None
    timezone: str
    allow_overlap: bool
    status: CronStatus
    last_enqueued_at: datetime | None
    last_job_id: int | None
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime
    retry_delay: int | None = None
    retry_backoff: bool | None = None
    retry_delay_max: int | None = None
    dead_letter_job_type: str | None = None
