"""Converting between records and the Redis representation (sans-IO, shared by both twins).

Hash fields hold plain strings: integers in decimal, times as integer microseconds since the
epoch (server clock), booleans as ``1``/``0``, structured values as JSON. A ``None`` value is
an absent field, so no user value can be mistaken for "nothing".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from dataqueue import _core
from dataqueue.backends.types import CronInput
from dataqueue.lifecycle import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY
from dataqueue.options import JobFilters, NewJob, UniqueSpec
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
    "cron_from_hash",
    "cron_values",
    "dec",
    "event_from_json",
    "from_us",
    "job_from_hash",
    "job_specs",
    "jobs_matching",
    "to_us",
    "token_from_hash",
]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US: Final = timedelta(microseconds=1)

#: Fields a filter needs, read in bulk while scanning an index.
FILTER_FIELDS: Final = ("status", "job_type", "priority", "run_at", "tags")


def to_us(value: datetime) -> int:
    return (value - EPOCH) // _US


def from_us(value: str | int) -> datetime:
    return EPOCH + timedelta(microseconds=int(value))


def dec(value: Any) -> Any:
    """Decode bytes (a caller's client may not decode responses) recursively."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [dec(v) for v in value]
    if isinstance(value, dict):
        return {dec(k): dec(v) for k, v in value.items()}
    return value


def pairs(flat: Sequence[Any]) -> dict[str, str]:
    """A flat HGETALL reply (as scripts return it) → dict."""
    flat = dec(flat)
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def _opt_time(h: Mapping[str, str], name: str) -> datetime | None:
    v = h.get(name)
    return None if v is None else from_us(v)


def _opt_int(h: Mapping[str, str], name: str) -> int | None:
    v = h.get(name)
    return None if v is None else int(v)


def _opt_bool(h: Mapping[str, str], name: str) -> bool | None:
    v = h.get(name)
    return None if v is None else v == "1"


def _opt_tuple(h: Mapping[str, str], name: str) -> tuple[Any, ...] | None:
    v = h.get(name)
    return None if v is None else tuple(json.loads(v))


_STATUSES: Final = {s.value: s for s in JobStatus}
_REASONS: Final = {r.value: r for r in FailureReason}


def _at(times: dict[str, datetime], value: str | None) -> datetime | None:
    """``from_us`` through ``times``: the jobs of one claim share most of their times (the
    claim's, their enqueue batch's), and building a datetime was a tenth of decoding a job."""
    if value is None:
        return None
    at = times.get(value)
    if at is None:
        at = times[value] = EPOCH + timedelta(microseconds=int(value))
    return at


def _tuple_of(value: str | None) -> tuple[Any, ...] | None:
    return None if value is None else tuple(json.loads(value))


def _int_of(value: str | None) -> int | None:
    return None if value is None else int(value)


def job_from_hash(h: Mapping[str, str], times: dict[str, datetime] | None = None) -> JobRecord:
    """A job's hash as a JobRecord; ``times`` (shared by the jobs of one read) caches the
    datetimes of the time fields."""
    if times is None:
        times = {}
    get = h.get
    reason = get("failure_reason")
    status = h["status"]
    history = get("error_history")
    step_data = get("step_data")
    output = get("output")
    retry_backoff = get("retry_backoff")
    return JobRecord(
        id=int(h["id"]),
        job_type=h["job_type"],
        payload=json.loads(h["payload"]),
        status=_STATUSES.get(status) or JobStatus(status),
        created_at=_at(times, h["created_at"]),  # type: ignore[arg-type]
        updated_at=_at(times, h["updated_at"]),  # type: ignore[arg-type]
        run_at=_at(times, h["run_at"]),  # type: ignore[arg-type]
        priority=int(get("priority", DEFAULT_PRIORITY)),
        attempts=int(get("attempts", 0)),
        max_attempts=int(get("max_attempts", DEFAULT_MAX_ATTEMPTS)),
        locked_at=_at(times, get("locked_at")),
        locked_by=get("locked_by"),
        lock_version=int(get("lock_version", 0)),
        lease_expires_at=_at(times, get("lease_expires_at")),
        next_attempt_at=_at(times, get("next_attempt_at")),
        pending_reason=get("pending_reason"),
        error_history=tuple(json.loads(history)) if history is not None else (),
        timeout_ms=_int_of(get("timeout_ms")),
        force_kill_on_timeout=get("force_kill_on_timeout") == "1",
        failure_reason=None if reason is None else (_REASONS.get(reason) or FailureReason(reason)),
        completed_at=_at(times, get("completed_at")),
        started_at=_at(times, get("started_at")),
        last_retried_at=_at(times, get("last_retried_at")),
        last_failed_at=_at(times, get("last_failed_at")),
        last_cancelled_at=_at(times, get("last_cancelled_at")),
        tags=_tuple_of(get("tags")),
        idempotency_key=get("idempotency_key"),
        wait_until=_at(times, get("wait_until")),
        wait_token_id=get("wait_token_id"),
        # {} when none was stored, as on PostgreSQL (its column defaults to an empty object).
        step_data=json.loads(step_data) if step_data is not None else {},
        progress=_int_of(get("progress")),
        output=json.loads(output) if output is not None else None,
        retry_delay=_int_of(get("retry_delay")),
        retry_backoff=None if retry_backoff is None else retry_backoff == "1",
        retry_delay_max=_int_of(get("retry_delay_max")),
        dead_letter_job_type=get("dead_letter_job_type"),
        dead_lettered_at=_at(times, get("dead_lettered_at")),
        dead_letter_job_id=_int_of(get("dead_letter_job_id")),
        group_id=get("group_id"),
        group_tier=get("group_tier"),
        depends_on_job_ids=_tuple_of(get("depends_on_job_ids")),
        depends_on_tags=_tuple_of(get("depends_on_tags")),
    )


def event_from_json(text: str) -> JobEvent:
    e = json.loads(text)
    return JobEvent(
        id=int(e["id"]),
        job_id=int(e["job_id"]),
        event_type=JobEventType(e["event_type"]),
        created_at=from_us(e["created_at"]),
        metadata=e.get("metadata"),
    )


def token_from_hash(h: Mapping[str, str]) -> WaitpointRecord:
    return WaitpointRecord(
        id=h["id"],
        job_id=_opt_int(h, "job_id"),
        status=TokenStatus(h["status"]),
        output=json.loads(h["output"]) if "output" in h else None,
        timeout_at=_opt_time(h, "timeout_at"),
        created_at=from_us(h["created_at"]),
        completed_at=_opt_time(h, "completed_at"),
        tags=_opt_tuple(h, "tags"),
    )


def cron_from_hash(h: Mapping[str, str]) -> CronScheduleRecord:
    return CronScheduleRecord(
        id=int(h["id"]),
        schedule_name=h["schedule_name"],
        cron_expression=h["cron_expression"],
        job_type=h["job_type"],
        payload=json.loads(h["payload"]),
        max_attempts=int(h["max_attempts"]),
        priority=int(h["priority"]),
        timeout_ms=_opt_int(h, "timeout_ms"),
        force_kill_on_timeout=h.get("force_kill_on_timeout") == "1",
        tags=_opt_tuple(h, "tags"),
        timezone=h["timezone"],
        allow_overlap=h.get("allow_overlap") == "1",
        status=CronStatus(h["status"]),
        last_enqueued_at=_opt_time(h, "last_enqueued_at"),
        last_job_id=_opt_int(h, "last_job_id"),
        next_run_at=_opt_time(h, "next_run_at"),
        created_at=from_us(h["created_at"]),
        updated_at=from_us(h["updated_at"]),
        retry_delay=_opt_int(h, "retry_delay"),
        retry_backoff=_opt_bool(h, "retry_backoff"),
        retry_delay_max=_opt_int(h, "retry_delay_max"),
        dead_letter_job_type=h.get("dead_letter_job_type"),
    )


# -- writing --------------------------------------------------------------------------------


def job_specs(
    jobs: Sequence[NewJob], unique: Sequence[UniqueSpec | None] | None = None
) -> tuple[str, str]:
    """The ``add_jobs`` script's input: a JSON array of job specs and the insertion order.

    Batch placeholders stay in ``deps``; the batch is planned here, once, by the Rust core
    (cycles, self references and placeholders outside the batch raise ``DependencyError``
    subclasses) and the script inserts in the plan's topological order ('' = input order).
    """
    order = ""
    if any(d < 0 for j in jobs if j.depends_on_job_ids for d in j.depends_on_job_ids):
        plan = _core.plan_batch([list(j.depends_on_job_ids or ()) for j in jobs])
        order = json.dumps(plan, separators=(",", ":"))
    specs: list[dict[str, Any]] = []
    for j in jobs:
        s: dict[str, Any] = {
            "job_type": j.job_type,
            "payload": j.payload_json,
            "max_attempts": j.max_attempts,
            "priority": j.priority,
        }
        if j.run_at is not None:
            s["run_at"] = to_us(j.run_at)
        if j.timeout_ms is not None:
            s["timeout_ms"] = j.timeout_ms
        if j.force_kill_on_timeout:
            s["fk"] = True
        if j.tags:
            s["tags"] = list(j.tags)
        if j.idempotency_key is not None:
            s["ikey"] = j.idempotency_key
        if j.retry_delay is not None:
            s["retry_delay"] = j.retry_delay
        if j.retry_backoff is not None:
            s["retry_backoff"] = j.retry_backoff
        if j.retry_delay_max is not None:
            s["retry_delay_max"] = j.retry_delay_max
        if j.dead_letter_job_type is not None:
            s["dlt"] = j.dead_letter_job_type
        if j.group_id is not None:
            s["gid"] = j.group_id
        if j.group_tier is not None:
            s["gtier"] = j.group_tier
        if j.depends_on_job_ids:
            s["deps"] = list(j.depends_on_job_ids)
        if j.depends_on_tags:
            s["dtags"] = list(j.depends_on_tags)
        specs.append(s)
    if unique is not None:
        for s, u in zip(specs, unique, strict=True):
            if u is not None:
                s["uq"] = u.key
                if u.while_active:
                    s["ua"] = True
                if u.for_seconds is not None:
                    s["uf"] = round(u.for_seconds * 1_000_000)
    return json.dumps(specs, separators=(",", ":"), ensure_ascii=False), order


def edit_args(values: Mapping[str, Any]) -> tuple[str, str]:
    """``JobUpdates.values`` → (JSON of values to set, JSON list of fields to clear)."""
    to_set: dict[str, Any] = {}
    clear: list[str] = []
    for key, value in values.items():
        if value is None or (key == "tags" and not value):
            clear.append(key)
        elif isinstance(value, datetime):
            to_set[key] = to_us(value)
        elif isinstance(value, tuple):
            to_set[key] = list(value)
        else:
            to_set[key] = value
    return json.dumps(to_set, ensure_ascii=False), json.dumps(clear)


def _cron_str(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return str(to_us(value))
    if isinstance(value, (tuple, list)):
        return json.dumps(list(value), ensure_ascii=False)
    return str(value)


def cron_values(values: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Schedule columns → (hash fields to set, fields to clear); ``payload_json`` → payload."""
    to_set: dict[str, str] = {}
    clear: list[str] = []
    for key, value in values.items():
        name = "payload" if key == "payload_json" else key
        if value is None or (name == "tags" and not value):
            clear.append(name)
        else:
            to_set[name] = _cron_str(name, value)
    return to_set, clear


def cron_input_values(schedule: CronInput) -> dict[str, str]:
    values = {
        "schedule_name": schedule.schedule_name,
        "cron_expression": schedule.cron_expression,
        "job_type": schedule.job_type,
        "payload_json": schedule.payload_json,
        "max_attempts": schedule.max_attempts,
        "priority": schedule.priority,
        "timeout_ms": schedule.timeout_ms,
        "force_kill_on_timeout": schedule.force_kill_on_timeout,
        "tags": schedule.tags,
        "timezone": schedule.timezone,
        "allow_overlap": schedule.allow_overlap,
        "retry_delay": schedule.retry_delay,
        "retry_backoff": schedule.retry_backoff,
        "retry_delay_max": schedule.retry_delay_max,
        "dead_letter_job_type": schedule.dead_letter_job_type,
        "next_run_at": schedule.next_run_at,
    }
    return cron_values(values)[0]


# -- filtering ------------------------------------------------------------------------------


def jobs_matching(
    rows: Sequence[Sequence[str | None]], filters: JobFilters, status: str | None = None
) -> list[bool]:
    """Which rows of FILTER_FIELDS satisfy ``filters`` (and ``status`` when given). The tag
    test of the whole chunk is one call into the Rust core (``tags_match_many``)."""
    out = [_fields_match(row, filters, status) for row in rows]
    tag_filter = filters.tags
    if tag_filter is not None:
        picked = [i for i, ok in enumerate(out) if ok]
        lists = [json.loads(t) if (t := rows[i][4]) else None for i in picked]
        matched = _core.tags_match_many(lists, list(tag_filter.values), tag_filter.mode.value)
        for i, ok in zip(picked, matched, strict=True):
            out[i] = ok
    return out


def _fields_match(row: Sequence[str | None], filters: JobFilters, status: str | None) -> bool:
    st, job_type, priority, run_at, _tags = row
    if st is None:
        return False  # deleted while we scanned
    if status is not None and st != status:
        return False
    if filters.job_type is not None and job_type != filters.job_type:
        return False
    if filters.priority is not None and (priority is None or int(priority) != filters.priority):
        return False
    if filters.run_at is not None and run_at is not None:
        when = int(run_at)
        for op, bound in filters.run_at.items():
            b = to_us(bound)
            ok = {
                "gt": when > b,
                "gte": when >= b,
                "lt": when < b,
                "lte": when <= b,
                "eq": when == b,
            }[op]
            if not ok:
                return False
    return True


def index_for(
    filters: JobFilters, keys_all: str, type_key: Any, tag_key: Any, status_key: str | None = None
) -> str:
    """The narrowest index whose members are a superset of what ``filters`` can match."""
    if filters.job_type is not None:
        return str(type_key(filters.job_type))
    tf = filters.tags
    if (
        tf is not None
        and (tf.mode.value in ("all", "exact") or len(tf.values) == 1)
        and tf.mode.value != "none"
    ):
        return str(tag_key(tf.values[0]))
    return status_key or keys_all


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
