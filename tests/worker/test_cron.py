"""Cron expression validation and next-occurrence computation (no server needed)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dataqueue.cron import (
    next_occurrence,
    next_run_for,
    validate_cron_expression,
    validate_timezone,
)
from dataqueue.errors import CronError
from dataqueue.records import CronScheduleRecord, CronStatus

UTC = timezone.utc


def test_every_five_minutes() -> None:
    after = datetime(2024, 1, 1, 0, 2, tzinfo=UTC)
    assert next_occurrence("*/5 * * * *", "UTC", after) == datetime(2024, 1, 1, 0, 5, tzinfo=UTC)


def test_strictly_after() -> None:
    after = datetime(2024, 1, 1, 0, 5, tzinfo=UTC)
    assert next_occurrence("*/5 * * * *", "UTC", after) == datetime(2024, 1, 1, 0, 10, tzinfo=UTC)


def test_midnight() -> None:
    after = datetime(2024, 3, 10, 13, 0, tzinfo=UTC)
    assert next_occurrence("0 0 * * *", "UTC", after) == datetime(2024, 3, 11, tzinfo=UTC)


def test_default_after_is_now() -> None:
    before = datetime.now(UTC)
    nxt = next_occurrence("* * * * *")
    assert nxt is not None
    assert nxt.tzinfo is not None
    assert before < nxt <= before + timedelta(minutes=1, seconds=1)


def test_time_zone() -> None:
    # 09:00 in Tokyo (UTC+9) is 00:00 UTC.
    after = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    nxt = next_occurrence("0 9 * * *", "Asia/Tokyo", after)
    assert nxt == datetime(2024, 1, 2, 0, 0, tzinfo=UTC)
    assert nxt is not None and nxt.utcoffset() == timedelta(0)


def test_dst_transition_new_york() -> None:
    # 2024-03-10 is the spring-forward day in New York: 09:00 EDT = 13:00 UTC.
    after = datetime(2024, 3, 10, 0, 0, tzinfo=UTC)
    assert next_occurrence("0 9 * * *", "America/New_York", after) == datetime(
        2024, 3, 10, 13, 0, tzinfo=UTC
    )


def test_february_30_never_fires() -> None:
    assert next_occurrence("0 0 30 2 *", "UTC", datetime(2024, 1, 1, tzinfo=UTC)) is None


def test_optional_seconds_field() -> None:
    after = datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert next_occurrence("*/10 * * * * *", "UTC", after) == datetime(
        2024, 1, 1, 0, 0, 10, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "expr", ["* * * * *", "0 9 * * 1-5", "*/15 0-6,18-23 1,15 * MON-FRI", "0 */2 * * *", "@daily"]
)
def test_valid_expressions(expr: str) -> None:
    validate_cron_expression(expr)


@pytest.mark.parametrize("expr", ["* * *", "", "   ", "garbage", "61 * * * *", "* * * * * * * *"])
def test_invalid_expressions(expr: str) -> None:
    with pytest.raises(CronError, match="Invalid cron expression"):
        validate_cron_expression(expr)


def test_next_occurrence_rejects_invalid_expression() -> None:
    with pytest.raises(CronError, match='Invalid cron expression: "nope"'):
        next_occurrence("nope")


def test_validate_timezone() -> None:
    validate_timezone("UTC")
    validate_timezone("Europe/Berlin")
    with pytest.raises(CronError, match="Mars/Olympus"):
        validate_timezone("Mars/Olympus")
    with pytest.raises(CronError):
        next_occurrence("* * * * *", "Not/AZone")


def test_naive_after_rejected() -> None:
    with pytest.raises(CronError):
        next_occurrence("* * * * *", "UTC", datetime(2024, 1, 1))


def test_next_run_for_record() -> None:
    now = datetime(2024, 1, 1, 0, 2, tzinfo=UTC)
    rec = CronScheduleRecord(
        id=1,
        schedule_name="s",
        cron_expression="*/5 * * * *",
        job_type="t",
        payload={},
        max_attempts=3,
        priority=0,
        timeout_ms=None,
        force_kill_on_timeout=False,
        tags=None,
        timezone="UTC",
        allow_overlap=False,
        status=CronStatus.ACTIVE,
        last_enqueued_at=None,
        last_job_id=None,
        next_run_at=None,
        created_at=now,
        updated_at=now,
    )
    assert next_run_for(rec, now) == datetime(2024, 1, 1, 0, 5, tzinfo=UTC)
