"""Cron expressions: validation and next-occurrence computation (on top of ``croniter``).

Accepted: the classic 5 fields (minute hour day-of-month month day-of-week), an optional leading
seconds field (6 fields), and croniter's nicknames (``@daily``, ``@hourly``, ...). Day-of-month and
day-of-week are OR-ed when both are restricted, as in Vixie cron. Occurrences are computed in the
schedule's IANA time zone and returned as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from dataqueue.errors import CronError
from dataqueue.records import CronScheduleRecord

__all__ = ["next_occurrence", "next_run_for", "validate_cron_expression", "validate_timezone"]

#: An expression with no occurrence within this many years never fires (e.g. ``0 0 30 2 *``).
_MAX_YEARS_BETWEEN_MATCHES = 10


def _fields(expr: str) -> int:
    return len(expr.split())


def _is_valid(expr: str) -> bool:
    if not isinstance(expr, str) or not expr.strip():
        return False
    text = expr.strip()
    if text.startswith("@"):
        return bool(croniter.is_valid(text))
    if _fields(text) not in (5, 6):
        return False
    return bool(croniter.is_valid(text, second_at_beginning=_fields(text) == 6))


def validate_cron_expression(expr: str) -> None:
    """Raise ``CronError`` unless ``expr`` is a valid cron expression."""
    if not _is_valid(expr):
        raise CronError(f'Invalid cron expression: "{expr}"')


def _zone(tz: str) -> ZoneInfo:
    if not isinstance(tz, str) or not tz:
        raise CronError(f'Invalid time zone: "{tz}"')
    try:
        return ZoneInfo(tz)
    except (
        ZoneInfoNotFoundError,
        ValueError,
        OSError,
    ) as exc:  # OSError: a name too long for a path
        raise CronError(f'Invalid time zone: "{tz}"') from exc


def validate_timezone(tz: str) -> None:
    """Raise ``CronError`` unless ``tz`` names an IANA time zone known to ``zoneinfo``."""
    _zone(tz)


def next_occurrence(expr: str, tz: str = "UTC", after: datetime | None = None) -> datetime | None:
    """The first occurrence of ``expr`` in time zone ``tz`` strictly after ``after`` (default now).

    Returns an aware UTC datetime, or None when the expression never matches (e.g. Feb 30).
    """
    validate_cron_expression(expr)
    zone = _zone(tz)
    if after is None:
        after = datetime.now(timezone.utc)
    elif after.tzinfo is None:
        raise CronError("next_occurrence needs a timezone-aware datetime")
    text = expr.strip()
    start = after.astimezone(zone)
    try:
        it = croniter(
            text,
            start,
            max_years_between_matches=_MAX_YEARS_BETWEEN_MATCHES,
            second_at_beginning=_fields(text) == 6,
        )
        nxt = it.get_next(datetime)
    except CroniterBadDateError:
        return None
    if not isinstance(nxt, datetime):  # pragma: no cover - croniter honours ret_type
        return None
    return nxt.astimezone(timezone.utc)


def next_run_for(record: CronScheduleRecord, after: datetime) -> datetime | None:
    """``NextRunFn`` for ``AsyncBackend.enqueue_due_cron_jobs``: the schedule's next run."""
    return next_occurrence(record.cron_expression, record.timezone, after)
