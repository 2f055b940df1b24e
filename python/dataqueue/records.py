"""Records returned by the queue (frozen dataclasses) and the enums they use."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeAlias

from dataqueue.lifecycle import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    FailureReason,
    JobEventType,
    JobStatus,
    TokenStatus,
)

__all__ = [
    "CronScheduleRecord",
    "CronStatus",
    "CronStatusName",
    "FailureReason",
    "JobEvent",
    "JobEventType",
    "JobRecord",
    "JobStatus",
    "JobStatusName",
    "TagQueryMode",
    "TagQueryModeName",
    "TokenStatus",
    "WaitpointRecord",
    "to_json",
]


#: The status names a method taking a status also accepts as plain strings.
JobStatusName: TypeAlias = Literal[
    "pending", "processing", "completed", "failed", "cancelled", "waiting"
]
#: ``get_jobs_by_tags`` / tag filter modes as plain strings.
TagQueryModeName: TypeAlias = Literal["all", "any", "none", "exact"]
#: Cron schedule statuses as plain strings.
CronStatusName: TypeAlias = Literal["active", "paused"]


class TagQueryMode(str, enum.Enum):
    """How ``get_jobs_by_tags`` / a ``tags`` filter compares tag sets (set semantics)."""

    ALL = "all"
    ANY = "any"
    NONE = "none"
    EXACT = "exact"


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
    priority: int = DEFAULT_PRIORITY
    attempts: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
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


def to_json(value: Any) -> Any:
    """Records, enums and datetimes as plain JSON values (ISO 8601 times), containers
    recursively: what the CLI's ``--json`` and the dashboard's API print."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value
