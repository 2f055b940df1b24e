"""The job lifecycle as data: statuses, defaults, transitions, fixed messages, failure plans.

This module is the one home of every rule about a job's life. The queue facade, the worker and
the maintenance loops decide with it; the backends only store the result. The PostgreSQL
statements render their status sets from it (``backends/postgres/sql.py``), the Redis scripts
receive it as a generated Lua chunk (:func:`lua_constants`), and ``docs/lifecycle.md`` holds the
table :func:`transition_table_markdown` renders (a test keeps the two equal).

Nothing here does I/O.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from dataqueue.records import JobRecord

__all__ = [
    "ACTIVE_STATUSES",
    "CLEANABLE_STATUSES",
    "COUNTED_STATUSES",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CLEANUP_BATCH_SIZE",
    "DEFAULT_CLEANUP_DAYS",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_PRIORITY",
    "DEFAULT_RETRY_DELAY",
    "DEFAULT_SHUTDOWN_GRACE",
    "DEFAULT_STOP_TIMEOUT",
    "DEFAULT_STUCK_MINUTES",
    "DEFAULT_SUPERVISOR_INTERVAL",
    "MAX_DAYS_TO_KEEP",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "FailurePlan",
    "FailureReason",
    "JobEventType",
    "JobStatus",
    "Operation",
    "TokenStatus",
    "Transition",
    "dead_letter_envelope",
    "lua_constants",
    "plan_failure",
    "sql_status_list",
    "transition_table_markdown",
]


# -- statuses -------------------------------------------------------------------------------
class JobStatus(str, enum.Enum):
    """Where a job is in its life cycle (``waiting`` = parked on a wait or token)."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    WAITING = "waiting"


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


class TokenStatus(str, enum.Enum):
    """The state of a waitpoint token (``create_token`` / ``complete_token``)."""

    WAITING = "waiting"
    COMPLETED = "completed"
    TIMED_OUT = "timed_out"


# -- status sets ------------------------------------------------------------------------------
#: Still to run or running: blocks tag drains and cron overlap, never cleaned up.
ACTIVE_STATUSES: Final = frozenset({JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.WAITING})
#: Finished for good (a ``failed`` job with a retry scheduled is not terminal, see
#: :func:`is_terminal`).
TERMINAL_STATUSES: Final = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
#: Statuses whose per-type job counts the Redis scripts keep as they write (dashboard counts);
#: processing jobs are counted from their index and completed ones as the rest of a type.
COUNTED_STATUSES: Final = frozenset(
    {JobStatus.PENDING, JobStatus.WAITING, JobStatus.FAILED, JobStatus.CANCELLED}
)
#: What ``cleanup_old_jobs`` may delete.
CLEANABLE_STATUSES: Final = TERMINAL_STATUSES

# -- defaults ---------------------------------------------------------------------------------
DEFAULT_MAX_ATTEMPTS: Final = 3
DEFAULT_PRIORITY: Final = 0
#: Seconds before a retry when ``retry_delay`` is not set (the Rust core's default as well).
DEFAULT_RETRY_DELAY: Final = 60
DEFAULT_CLEANUP_DAYS: Final = 30
DEFAULT_CLEANUP_BATCH_SIZE: Final = 1000
DEFAULT_STUCK_MINUTES: Final = 10
DEFAULT_SUPERVISOR_INTERVAL: Final = 60.0
DEFAULT_LEASE_SECONDS: Final = 30.0
DEFAULT_BATCH_SIZE: Final = 10
DEFAULT_CONCURRENCY: Final = 3
DEFAULT_POLL_INTERVAL: Final = 5.0
DEFAULT_SHUTDOWN_GRACE: Final = 30.0
#: How long ``stop_and_drain``/``close`` wait for running jobs by default.
DEFAULT_STOP_TIMEOUT: Final = 30.0
#: Upper bound of cleanup's ``days_to_keep`` (about 2,700 years): beyond it the cutoff date
#: itself overflows (PostgreSQL's int4 interval days, Python's timedelta).
MAX_DAYS_TO_KEEP: Final = 1_000_000
#: A dead-letter job runs once: its handler decides what to do with the failure.
DEAD_LETTER_MAX_ATTEMPTS: Final = 1
#: Most due cron schedules, expired tokens or delayed jobs one maintenance statement handles.
MAINTENANCE_CHUNK: Final = 1000

# -- fixed messages ---------------------------------------------------------------------------
MSG_WORKER_LOST: Final = "worker lost: the job's lease expired with no attempts left"
MSG_TOKEN_TIMED_OUT: Final = "Token timed out"
MSG_NO_HANDLER: Final = 'No handler registered for job type "{job_type}"'
#: Step-data keys of durable waits start with this (``ctx.wait_for`` and friends).
WAIT_PREFIX: Final = "__wait_"
#: ... and of the tokens a job waits on.
TOKEN_PREFIX: Final = "__token_"


def no_handler_message(job_type: str) -> str:
    return MSG_NO_HANDLER.format(job_type=job_type)


def unknown_prerequisites_message(ids: Iterable[int]) -> str:
    """The missing prerequisites, in ascending order, worded alike on every backend."""
    listed = ", ".join(str(i) for i in sorted(set(ids)))
    return f"depends_on.job_ids: job id(s) {listed} do not exist"


def self_dependency_via_key(index: int) -> str:
    """An ``add_jobs`` entry whose placeholder resolves to itself (idempotency key)."""
    return f"job {index} of the batch depends on itself through its idempotency key"


# -- transitions ------------------------------------------------------------------------------
class Operation(str, enum.Enum):
    """Everything that moves a job between statuses."""

    CLAIM = "claim"
    COMPLETE = "complete"
    FAIL = "fail"  # the worker's failure of its attempt (fenced)
    FAIL_UNFENCED = "fail_unfenced"  # an administrative failure (no worker fence)
    WAIT = "wait"
    PROLONG = "prolong"
    HEARTBEAT = "heartbeat"
    RECLAIM = "reclaim"
    RETRY = "retry"
    CANCEL = "cancel"
    EDIT = "edit"
    RESUME = "resume"  # a waited-on token completed or timed out


@dataclass(frozen=True, slots=True)
class Transition:
    """Which statuses ``operation`` accepts and what it leaves behind."""

    operation: Operation
    accepts: frozenset[JobStatus]
    result: str  # the resulting status, or a short rule when it depends on the job
    events: tuple[JobEventType, ...]
    hooks: tuple[str, ...]
    dependents: str  # what happens to jobs depending on this one
    fenced: bool  # needs the caller's (worker id, lock version)


_P, _R, _W = JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.WAITING
_F = JobStatus.FAILED

#: (operation, accepted statuses, result, events, hooks, dependents, fenced)
_TABLE: Final = (
    (Operation.CLAIM, {_P, _F, _W}, "processing (a pending/failed job uses an attempt; a resumed wait does not)", (JobEventType.PROCESSING,), ("job:processing",), "-", False),  # noqa: E501
    (Operation.COMPLETE, {_R}, "completed", (JobEventType.COMPLETED,), ("job:completed",), "released (one fewer unmet prerequisite)", True),  # noqa: E501
    (Operation.FAIL, {_R}, "failed; retried later if attempts remain, else terminal (dead letter)", (JobEventType.FAILED,), ("job:failed",), "cancelled transitively when terminal", True),  # noqa: E501
    (Operation.FAIL_UNFENCED, {_P, _R, _W}, "failed; retried later if attempts remain, else terminal (dead letter)", (JobEventType.FAILED,), (), "cancelled transitively when terminal", False),  # noqa: E501
    (Operation.WAIT, {_R}, "waiting (pending at once if the token already finished)", (JobEventType.WAITING,), ("job:waiting",), "-", True),  # noqa: E501
    (Operation.PROLONG, {_R}, "processing (lease extended)", (JobEventType.PROLONGED,), (), "-", True),  # noqa: E501
    (Operation.HEARTBEAT, {_R}, "processing (lease renewed)", (), (), "-", True),
    (Operation.RECLAIM, {_R}, "pending if attempts remain (no event), else a worker_lost failure (fail_unfenced)", (), (), "cancelled transitively when terminal", False),  # noqa: E501
    (Operation.RETRY, {_F, _R}, "pending with a fresh attempt budget", (JobEventType.RETRIED,), ("job:retried",), "-", False),  # noqa: E501
    (Operation.CANCEL, {_P, _W}, "cancelled", (JobEventType.CANCELLED,), ("job:cancelled",), "cancelled transitively", False),  # noqa: E501
    (Operation.EDIT, {_P}, "pending", (JobEventType.EDITED,), (), "-", False),
    (Operation.RESUME, {_W}, "pending (the next claim uses no attempt)", (), (), "-", False),
)  # fmt: skip

TRANSITIONS: Final[Mapping[Operation, Transition]] = {
    op: Transition(op, frozenset(accepted), result, events, hooks, dependents, fenced=fenced)
    for op, accepted, result, events, hooks, dependents, fenced in _TABLE
}


def accepts(operation: Operation, status: JobStatus) -> bool:
    return status in TRANSITIONS[operation].accepts


def is_terminal(job: JobRecord) -> bool:
    """Finished for good: completed, cancelled, or failed with no retry scheduled."""
    if job.status is JobStatus.FAILED:
        return job.next_attempt_at is None
    return job.status in TERMINAL_STATUSES


# -- failures ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FailurePlan:
    """What a failure does, decided here and applied atomically by a backend.

    ``retry_delay_seconds`` None means the failure is terminal: the backend then writes the
    dead-letter job (when ``dead_letter_job_type`` is set) and cancels dependents, all in the
    same transaction or script as the failure itself.
    """

    message: str
    reason: FailureReason | None
    retry_delay_seconds: float | None
    dead_letter_job_type: str | None = None
    #: JSON object text: the dead-letter job's payload (:func:`dead_letter_envelope`).
    dead_letter_payload_json: str | None = None
    #: JSON object text: the error-history entry without its ``timestamp`` (the store adds it).
    error_entry_json: str = "{}"

    @property
    def will_retry(self) -> bool:
        return self.retry_delay_seconds is not None


def dead_letter_envelope(
    job: JobRecord, message: str, reason: FailureReason | None, failed_at: datetime
) -> dict[str, Any]:
    """The payload of a dead-letter job (SPEC §5)."""
    return {
        "original_job": {
            "id": job.id,
            "job_type": job.job_type,
            "attempts": job.attempts,
            "max_attempts": job.max_attempts,
        },
        "original_payload": job.payload,
        "failure": {
            "message": message,
            "reason": reason.value if reason is not None else None,
            "failed_at": failed_at.isoformat(),
        },
    }


def plan_failure(
    job: JobRecord,
    message: str,
    reason: FailureReason | None,
    *,
    retry_delay_seconds: float,
    retryable: bool = True,
    details: Mapping[str, Any] | None = None,
) -> FailurePlan:
    """Retry or fail for good, from the record the caller holds (its attempt is fenced by
    ``lock_version``, so the record is the stored one): attempts remain → retry after
    ``retry_delay_seconds``; otherwise terminal, routed to the dead-letter type if any."""
    will_retry = retryable and job.attempts < job.max_attempts
    message = storable_text(message)
    entry: dict[str, Any] = {"message": message}
    if details:
        entry.update({k: storable_text(v) if isinstance(v, str) else v for k, v in details.items()})
    dead_letter = None if will_retry else job.dead_letter_job_type
    envelope = None
    if dead_letter is not None:
        envelope = _json(dead_letter_envelope(job, message, reason, datetime.now(timezone.utc)))
    return FailurePlan(
        message=message,
        reason=reason,
        retry_delay_seconds=max(0.0, float(retry_delay_seconds)) if will_retry else None,
        dead_letter_job_type=dead_letter,
        dead_letter_payload_json=envelope,
        error_entry_json=_json(entry),
    )


def storable_text(text: str) -> str:
    """``text`` as both stores can hold it: an exception's message may carry a NUL or a lone
    surrogate (from a handler, not from validated input), which PostgreSQL's jsonb and UTF-8
    refuse; they are written as escapes instead of failing the failure itself."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _json(value: Any) -> str:
    # The payload was stored as JSON, so it dumps again; default=str only guards odd extras.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# -- rendering for the stores -----------------------------------------------------------------
def sql_status_list(statuses: frozenset[JobStatus]) -> str:
    """``('a', 'b')`` for a SQL ``IN`` (statuses are fixed enum values, never user input)."""
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(statuses, key=lambda s: s.value)) + ")"


def _lua_set(statuses: frozenset[JobStatus]) -> str:
    inner = ", ".join(f"{s.value} = true" for s in sorted(statuses, key=lambda s: s.value))
    return "{ " + inner + " }"


def _lua_str(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for ASCII


def lua_constants() -> str:
    """The Lua chunk the Redis scripts start with: the sets and messages above."""
    lines = [
        "-- Generated from dataqueue/lifecycle.py by the script loader; do not edit.",
        f"local ACTIVE = {_lua_set(ACTIVE_STATUSES)}",
        f"local TERMINAL = {_lua_set(TERMINAL_STATUSES)}",
        f"local COUNTED = {_lua_set(COUNTED_STATUSES)}",
    ]
    for op, t in TRANSITIONS.items():
        lines.append(f"local ACCEPTS_{op.name} = {_lua_set(t.accepts)}")
    lines += [
        f"local DEFAULT_MAX_ATTEMPTS = {DEFAULT_MAX_ATTEMPTS}",
        f"local DEFAULT_PRIORITY = {DEFAULT_PRIORITY}",
        f"local DEAD_LETTER_MAX_ATTEMPTS = {DEAD_LETTER_MAX_ATTEMPTS}",
        f"local MAINTENANCE_CHUNK = {MAINTENANCE_CHUNK}",
        f"local MSG_WORKER_LOST = {_lua_str(MSG_WORKER_LOST)}",
    ]
    return "\n".join(lines) + "\n"


def transition_table_markdown() -> str:
    """The status x operation table of ``docs/lifecycle.md``."""
    statuses = list(JobStatus)
    head = "| operation | " + " | ".join(s.value for s in statuses) + " | result | events | hooks"
    head += " | dependents |"
    rule = "|---" * (len(statuses) + 5) + "|"
    rows = [head, rule]
    for op, t in TRANSITIONS.items():
        cells = ["✓" if s in t.accepts else "refused" for s in statuses]
        name = op.value + (" (fenced)" if t.fenced else "")
        events = ", ".join(e.value for e in t.events) or "-"
        hooks = ", ".join(t.hooks) or "-"
        rows.append(
            f"| {name} | " + " | ".join(cells) + f" | {t.result} | {events} | {hooks}"
            f" | {t.dependents} |"
        )
    return "\n".join(rows) + "\n"
