"""Converting between records and the Redis representation (sans-IO, shared by both twins).

Hash fields hold plain strings: integers in decimal, times as integer microseconds since the
epoch (server clock), booleans as ``1``/``0``, structured values as JSON. A ``None`` value is
an absent field, so no user value can be mistaken for "nothing".
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from dataqueue import _core
from dataqueue.backends import record_spec as spec
from dataqueue.backends.types import CronInput
from dataqueue.lifecycle import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY
from dataqueue.options import JobFilters, NewJob, UniqueSpec, compact_json
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


# How each JobRecord field is stored in a job hash, for the Rust core's RecordSpec (one dict
# lookup, a conversion for present fields and one attribute store per field; the rules are
# those of dataqueue.backends.record_spec). Times are µs; JSON is a CALL of json.loads.
_STR, _INT, _TIME, _JSON, _TUPLE, _FLAG, _ENUM = (
    spec.STR, spec.INT, spec.TIME, spec.CALL, spec.TUPLE, spec.FLAG, spec.ENUM
)  # fmt: skip
_AS_IS, _FACTORY, _REQUIRED = spec.AS_IS, spec.FACTORY, spec.REQUIRED
_JOB_FIELDS: Final[dict[str, tuple[int, int, Any]]] = {
    "id": (_INT, _REQUIRED, None),
    "job_type": (_STR, _REQUIRED, None),
    "payload": (_JSON, _REQUIRED, None),
    "status": (_ENUM, _REQUIRED, None),
    "created_at": (_TIME, _REQUIRED, None),
    "updated_at": (_TIME, _REQUIRED, None),
    "run_at": (_TIME, _REQUIRED, None),
    "priority": (_INT, _AS_IS, DEFAULT_PRIORITY),
    "attempts": (_INT, _AS_IS, 0),
    "max_attempts": (_INT, _AS_IS, DEFAULT_MAX_ATTEMPTS),
    "locked_at": (_TIME, _AS_IS, None),
    "locked_by": (_STR, _AS_IS, None),
    "lock_version": (_INT, _AS_IS, 0),
    "lease_expires_at": (_TIME, _AS_IS, None),
    "next_attempt_at": (_TIME, _AS_IS, None),
    "pending_reason": (_STR, _AS_IS, None),
    "error_history": (_TUPLE, _AS_IS, ()),
    "timeout_ms": (_INT, _AS_IS, None),
    "force_kill_on_timeout": (_FLAG, _AS_IS, False),
    "failure_reason": (_ENUM, _AS_IS, None),
    "completed_at": (_TIME, _AS_IS, None),
    "started_at": (_TIME, _AS_IS, None),
    "last_retried_at": (_TIME, _AS_IS, None),
    "last_failed_at": (_TIME, _AS_IS, None),
    "last_cancelled_at": (_TIME, _AS_IS, None),
    "tags": (_TUPLE, _AS_IS, None),
    "idempotency_key": (_STR, _AS_IS, None),
    "wait_until": (_TIME, _AS_IS, None),
    "wait_token_id": (_STR, _AS_IS, None),
    # {} when none was stored, as on PostgreSQL (its column defaults to an empty object).
    "step_data": (_JSON, _FACTORY, dict),
    "progress": (_INT, _AS_IS, None),
    "output": (_JSON, _AS_IS, None),
    "retry_delay": (_INT, _AS_IS, None),
    "retry_backoff": (_FLAG, _AS_IS, None),
    "retry_delay_max": (_INT, _AS_IS, None),
    "dead_letter_job_type": (_STR, _AS_IS, None),
    "dead_lettered_at": (_TIME, _AS_IS, None),
    "dead_letter_job_id": (_INT, _AS_IS, None),
    "group_id": (_STR, _AS_IS, None),
    "group_tier": (_STR, _AS_IS, None),
    "depends_on_job_ids": (_TUPLE, _AS_IS, None),
    "depends_on_tags": (_TUPLE, _AS_IS, None),
}
_ENUMS: Final[dict[str, type[JobStatus] | type[FailureReason]]] = {
    "status": JobStatus,
    "failure_reason": FailureReason,
}


def _job_spec() -> _core.RecordSpec:
    names = [f.name for f in dataclasses.fields(JobRecord)]
    if set(names) != set(_JOB_FIELDS):  # a field added to JobRecord needs its storage rule
        raise RuntimeError(f"redis codec: JobRecord fields differ: {set(names) ^ set(_JOB_FIELDS)}")
    rows = []
    for name in names:
        kind, absent, default = _JOB_FIELDS[name]
        extra: Any = None
        if kind == _TIME:
            extra = from_us
        elif kind in (_JSON, _TUPLE):
            extra = json.loads
        elif kind == _ENUM:
            enum = _ENUMS[name]
            extra = ({m.value: m for m in enum}, enum)
        rows.append((name, kind, absent, default, extra))
    return _core.RecordSpec(JobRecord, rows)


_JOB_SPEC: Final = _job_spec()


def job_from_hash(h: dict[str, str], times: dict[str, datetime] | None = None) -> JobRecord:
    """A job's hash as a JobRecord; ``times`` (shared by the jobs of one read) caches the
    datetimes of the time fields."""
    return _JOB_SPEC.build(h, {} if times is None else times)  # type: ignore[no-any-return]


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
        order = compact_json(plan)
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
    return compact_json(specs), order


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
