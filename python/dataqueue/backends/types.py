"""Value types shared by the backends, the queue facade and the processor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from dataqueue.records import CronScheduleRecord

__all__ = ["KEEP", "AddedJob", "CronInput", "FailOutcome", "NextRunFn"]


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
