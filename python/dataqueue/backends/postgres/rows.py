"""Database rows → records (sans-IO). Column lists here and in ``sql.py`` must stay in step."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final

from dataqueue import records

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
_I_STATUS = JOB_COLUMNS.index("status")
_I_HISTORY = JOB_COLUMNS.index("error_history")
_I_REASON = JOB_COLUMNS.index("failure_reason")
_I_TAGS = JOB_COLUMNS.index("tags")
_I_DEP_IDS = JOB_COLUMNS.index("depends_on_job_ids")
_I_DEP_TAGS = JOB_COLUMNS.index("depends_on_tags")


def _tuple(value: list[Any] | None) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


def job_from_row(row: Sequence[Any]) -> records.JobRecord:
    """A ``SELECT <JOB_COLUMNS>`` row as a JobRecord (JSON columns arrive decoded)."""
    values = list(row)
    values[_I_STATUS] = _STATUS[values[_I_STATUS]]
    values[_I_HISTORY] = tuple(values[_I_HISTORY] or ())
    reason = values[_I_REASON]
    values[_I_REASON] = _REASON.get(reason) if reason is not None else None
    values[_I_TAGS] = _tuple(values[_I_TAGS])
    values[_I_DEP_IDS] = _tuple(values[_I_DEP_IDS])
    values[_I_DEP_TAGS] = _tuple(values[_I_DEP_TAGS])
    return records.JobRecord(*values)


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
