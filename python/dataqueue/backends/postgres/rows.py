"""Database rows → records (sans-IO). Column lists here and in ``sql.py`` must stay in step."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final

from dataqueue import _core, records
from dataqueue.backends import record_spec as spec

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


def _fields(record: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(record))


# Each record's fields, in its order, are also its table's column names.
JOB_COLUMNS: Final = _fields(records.JobRecord)
EVENT_COLUMNS: Final = _fields(records.JobEvent)
TOKEN_COLUMNS: Final = _fields(records.WaitpointRecord)
CRON_COLUMNS: Final = _fields(records.CronScheduleRecord)

_STATUS = {s.value: s for s in records.JobStatus}
_REASON = {r.value: r for r in records.FailureReason}


def _tuple(value: list[Any] | None) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


def _job_row_spec() -> _core.RecordSpec:
    """The Rust core's builder of a JobRecord from a row in JOB_COLUMNS order (psycopg has
    converted the values): enums by value, arrays as tuples, the rest as they come. About
    4x faster than the dataclass ``__init__`` and its ``object.__setattr__`` per field."""
    special: dict[str, tuple[int, int, Any, Any]] = {
        # name: (kind, absent, default, extra); a NULL under REQUIRED stays None
        "status": (spec.ENUM, spec.REQUIRED, None, (_STATUS, records.JobStatus)),
        "failure_reason": (spec.ENUM, spec.REQUIRED, None, (_REASON, _REASON.get)),  # unknown: None
        "error_history": (spec.TUPLE, spec.AS_IS, (), iter),
        "tags": (spec.TUPLE, spec.REQUIRED, None, iter),
        "depends_on_job_ids": (spec.TUPLE, spec.REQUIRED, None, iter),
        "depends_on_tags": (spec.TUPLE, spec.REQUIRED, None, iter),
    }
    plain = (spec.STR, spec.REQUIRED, None, None)  # the value as it comes
    rows = [(name, *special.get(name, plain)) for name in JOB_COLUMNS]
    return _core.RecordSpec(records.JobRecord, rows)


_JOB_ROW: Final = _job_row_spec()


def job_from_row(row: tuple[Any, ...]) -> records.JobRecord:
    """A ``SELECT <JOB_COLUMNS>`` row as a JobRecord (JSON columns arrive decoded)."""
    job: records.JobRecord = _JOB_ROW.build_row(row)
    return job


def event_from_row(row: Sequence[Any]) -> records.JobEvent:
    """A ``SELECT <EVENT_COLUMNS>`` row as a JobEvent."""
    return records.JobEvent(row[0], row[1], records.JobEventType(row[2]), row[3], row[4])


def token_from_row(row: Sequence[Any]) -> records.WaitpointRecord:
    """A ``SELECT <TOKEN_COLUMNS>`` row as a WaitpointRecord."""
    return records.WaitpointRecord(
        row[0], row[1], records.TokenStatus(row[2]), row[3], row[4], row[5], row[6], _tuple(row[7])
    )


def cron_from_row(row: Sequence[Any]) -> records.CronScheduleRecord:
    """A ``SELECT <CRON_COLUMNS>`` row as a CronScheduleRecord."""
    values = list(row)
    values[9] = _tuple(values[9])
    values[12] = records.CronStatus(values[12])
    return records.CronScheduleRecord(*values)
