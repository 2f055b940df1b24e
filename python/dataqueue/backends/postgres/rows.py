"""Database rows → records (sans-IO). Column lists here and in ``sql.py`` must stay in step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from dataqueue.records import (
    CronScheduleRecord,
    CronStatus,
    FailureReason,
    JobEvent,
    JobEventType,
    JobRecord,
    JobStatus,
    TokenStatus,
    WaitpointRecord,
)

__all__ = [
    "CRON_COLUMNS",
    "EVENT_COLUMNS",
    "JOB_COLUMNS",
    "TOKEN_COLUMNS",
    "cron_from_row",
    "event_from_row",
    "job_from_row",
    "token_from_row",
]

#: JobRecord fields, in JobRecord order; each is also the column name.
JOB_COLUMNS: Final = (
    "id", "job_type", "payload", "status", "created_at", "updated_at", "run_at", "priority",
    "attempts", "max_attempts", "locked_at", "locked_by", "lock_version", "lease_expires_at",
    "next_attempt_at", "pending_reason", "error_history", "timeout_ms", "force_kill_on_timeout",
    "failure_reason", "completed_at", "started_at", "last_retried_at", "last_failed_at",
    "last_cancelled_at", "tags", "idempotency_key", "wait_until", "wait_token_id", "step_data",
    "progress", "output", "retry_delay", "retry_backoff", "retry_delay_max",
    "dead_letter_job_type", "dead_lettered_at", "dead_letter_job_id", "group_id", "group_tier",
    "depends_on_job_ids", "depends_on_tags",
)  # fmt: skip

EVENT_COLUMNS: Final = ("id", "job_id", "event_type", "created_at", "metadata")

TOKEN_COLUMNS: Final = (
    "id", "job_id", "status", "output", "timeout_at", "created_at", "completed_at", "tags",
)  # fmt: skip

CRON_COLUMNS: Final = (
    "id", "schedule_name", "cron_expression", "job_type", "payload", "max_attempts", "priority",
    "timeout_ms", "force_kill_on_timeout", "tags", "timezone", "allow_overlap", "status",
    "last_enqueued_at", "last_job_id", "next_run_at", "created_at", "updated_at", "retry_delay",
    "retry_backoff", "retry_delay_max", "dead_letter_job_type",
)  # fmt: skip

_STATUS = {s.value: s for s in JobStatus}
_REASON = {r.value: r for r in FailureReason}
_I_STATUS = JOB_COLUMNS.index("status")
_I_HISTORY = JOB_COLUMNS.index("error_history")
_I_REASON = JOB_COLUMNS.index("failure_reason")
_I_TAGS = JOB_COLUMNS.index("tags")
_I_DEP_IDS = JOB_COLUMNS.index("depends_on_job_ids")
_I_DEP_TAGS = JOB_COLUMNS.index("depends_on_tags")


def _tuple(value: list[Any] | None) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


def job_from_row(row: Sequence[Any]) -> JobRecord:
    """A ``SELECT <JOB_COLUMNS>`` row as a JobRecord (JSON columns arrive decoded)."""
    values = list(row)
    values[_I_STATUS] = _STATUS[values[_I_STATUS]]
    values[_I_HISTORY] = tuple(values[_I_HISTORY] or ())
    reason = values[_I_REASON]
    values[_I_REASON] = _REASON.get(reason) if reason is not None else None
    values[_I_TAGS] = _tuple(values[_I_TAGS])
    values[_I_DEP_IDS] = _tuple(values[_I_DEP_IDS])
    values[_I_DEP_TAGS] = _tuple(values[_I_DEP_TAGS])
    return JobRecord(*values)


def event_from_row(row: Sequence[Any]) -> JobEvent:
    """A ``SELECT <EVENT_COLUMNS>`` row as a JobEvent."""
    return JobEvent(row[0], row[1], JobEventType(row[2]), row[3], row[4])


def token_from_row(row: Sequence[Any]) -> WaitpointRecord:
    """A ``SELECT <TOKEN_COLUMNS>`` row as a WaitpointRecord."""
    return WaitpointRecord(
        row[0], row[1], TokenStatus(row[2]), row[3], row[4], row[5], row[6], _tuple(row[7])
    )


def cron_from_row(row: Sequence[Any]) -> CronScheduleRecord:
    """A ``SELECT <CRON_COLUMNS>`` row as a CronScheduleRecord."""
    values = list(row)
    values[9] = _tuple(values[9])
    values[12] = CronStatus(values[12])
    return CronScheduleRecord(*values)
