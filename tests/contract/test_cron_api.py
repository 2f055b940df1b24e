"""Cron schedules through the queue API (expression parsing itself: tests/worker/test_cron.py)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from dataqueue import CronError, CronStatus, InvalidJobError, JobStatus

UTC = timezone.utc
EVERY_SECOND = "* * * * * *"  # six fields: seconds first
YEARLY = "0 0 1 1 *"


def wait_until_due(q: Any, cron_id: int) -> None:
    due = q.get_cron_job(cron_id).next_run_at
    assert due is not None
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.05)


def test_create_and_get(q: Any) -> None:
    before = datetime.now(UTC)
    cron_id = q.add_cron_job("nightly", "0 3 * * *", "report", {"kind": "daily"}, tags=["c"])
    rec = q.get_cron_job(cron_id)
    assert rec.id == cron_id
    assert rec.schedule_name == "nightly"
    assert rec.cron_expression == "0 3 * * *"
    assert rec.job_type == "report"
    assert rec.payload == {"kind": "daily"}
    assert rec.status == CronStatus.ACTIVE
    assert rec.timezone == "UTC"
    assert rec.allow_overlap is False
    assert rec.tags == ("c",)
    assert (rec.max_attempts, rec.priority, rec.timeout_ms) == (3, 0, None)
    assert rec.last_job_id is None and rec.last_enqueued_at is None
    assert rec.next_run_at is not None
    assert before < rec.next_run_at <= before + timedelta(days=1)
    assert (rec.next_run_at.hour, rec.next_run_at.minute) == (3, 0)
    assert q.get_cron_job_by_name("nightly") == rec
    assert q.get_cron_job_by_name("missing") is None
    assert q.get_cron_job(987654) is None


def test_timezone_is_applied(q: Any) -> None:
    cron_id = q.add_cron_job("tokyo", "0 9 * * *", "t", timezone="Asia/Tokyo")
    rec = q.get_cron_job(cron_id)
    assert rec.timezone == "Asia/Tokyo"
    assert rec.next_run_at.utcoffset() == timedelta(0)
    assert (rec.next_run_at.hour, rec.next_run_at.minute) == (0, 0)  # 09:00 JST = 00:00 UTC


def test_duplicate_name_rejected(q: Any) -> None:
    q.add_cron_job("same", YEARLY, "t")
    with pytest.raises(CronError, match="same"):
        q.add_cron_job("same", "* * * * *", "other")
    assert len(q.list_cron_jobs()) == 1


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"cron_expression": "not a cron"}, CronError),
        ({"cron_expression": "* * *"}, CronError),
        ({"cron_expression": ""}, CronError),
        ({"cron_expression": "61 * * * *"}, CronError),
        ({"timezone": "Mars/Olympus"}, CronError),
        ({"schedule_name": ""}, CronError),
        ({"allow_overlap": "yes"}, CronError),
        ({"job_type": ""}, InvalidJobError),
        ({"payload": {1, 2}}, InvalidJobError),
        ({"max_attempts": 0}, InvalidJobError),
    ],
)
def test_invalid_schedules_rejected(q: Any, kwargs: dict[str, Any], error: type) -> None:
    args: dict[str, Any] = {
        "schedule_name": "s",
        "cron_expression": "* * * * *",
        "job_type": "t",
        **kwargs,
    }
    with pytest.raises(error):
        q.add_cron_job(**args)
    assert q.list_cron_jobs() == []


def test_list_pause_resume_remove(q: Any) -> None:
    a = q.add_cron_job("a", YEARLY, "t")
    b = q.add_cron_job("b", YEARLY, "t")
    assert [r.id for r in q.list_cron_jobs()] == [a, b]  # oldest first
    assert q.pause_cron_job(a)
    assert [r.id for r in q.list_cron_jobs("paused")] == [a]
    assert [r.id for r in q.list_cron_jobs(CronStatus.ACTIVE)] == [b]
    assert q.resume_cron_job(a)
    assert q.get_cron_job(a).status == CronStatus.ACTIVE
    assert q.remove_cron_job(a) is True
    assert q.get_cron_job(a) is None
    assert q.remove_cron_job(a) is False
    assert [r.id for r in q.list_cron_jobs()] == [b]


def test_unknown_ids_are_no_ops(q: Any) -> None:
    assert q.pause_cron_job(4242) is False
    assert q.resume_cron_job(4242) is False
    assert q.edit_cron_job(4242, priority=3) is False
    assert q.edit_cron_job(4242, cron_expression="* * * * *") is False
    assert q.list_cron_jobs() == []


def test_edit_recomputes_next_run(q: Any) -> None:
    cron_id = q.add_cron_job("e", YEARLY, "t", {"v": 1})
    before = q.get_cron_job(cron_id)
    assert q.edit_cron_job(cron_id, cron_expression="*/5 * * * *", payload={"v": 2}, priority=4)
    after = q.get_cron_job(cron_id)
    assert after.cron_expression == "*/5 * * * *"
    assert after.payload == {"v": 2} and after.priority == 4
    assert after.next_run_at < before.next_run_at
    assert after.next_run_at <= datetime.now(UTC) + timedelta(minutes=5, seconds=5)
    assert after.next_run_at.minute % 5 == 0
    assert q.edit_cron_job(cron_id, timezone="Asia/Tokyo", cron_expression="0 9 * * *")
    assert q.get_cron_job(cron_id).next_run_at.hour == 0
    assert q.edit_cron_job(cron_id, tags=["x"], allow_overlap=True, timeout_ms=None)
    rec = q.get_cron_job(cron_id)
    assert rec.tags == ("x",) and rec.allow_overlap is True and rec.schedule_name == "e"


@pytest.mark.parametrize(
    "updates",
    [
        {"schedule_name": "x"},
        {"cron_expression": "nope"},
        {"timezone": "Nowhere/Land"},
        {"allow_overlap": 1},
        {"run_at": None},
        {"max_attempts": 0},
    ],
)
def test_edit_rejects_bad_updates(q: Any, updates: dict[str, Any]) -> None:
    cron_id = q.add_cron_job("e", YEARLY, "t")
    before = q.get_cron_job(cron_id)
    with pytest.raises((CronError, InvalidJobError)):
        q.edit_cron_job(cron_id, **updates)
    assert q.get_cron_job(cron_id) == before


def test_enqueue_due_cron_jobs(q: Any) -> None:
    due = q.add_cron_job(
        "due",
        EVERY_SECOND,
        "tick",
        {"n": 1},
        priority=2,
        tags=["cron"],
        max_attempts=4,
        retry_delay=7,
        retry_backoff=False,
        retry_delay_max=70,
        dead_letter_job_type="tick_dlq",
        timeout_ms=1234,
    )
    q.add_cron_job("later", YEARLY, "tock")
    paused = q.add_cron_job("paused", EVERY_SECOND, "paused")
    q.pause_cron_job(paused)
    wait_until_due(q, due)
    before = q.get_cron_job(due)
    assert q.enqueue_due_cron_jobs() == 1
    rec = q.get_cron_job(due)
    assert rec.last_job_id is not None and rec.last_job_id != before.last_job_id
    assert rec.last_enqueued_at is not None
    assert rec.next_run_at > before.next_run_at
    job = q.get_job(rec.last_job_id)
    assert job.job_type == "tick" and job.payload == {"n": 1}
    assert (job.priority, job.tags, job.max_attempts, job.timeout_ms) == (2, ("cron",), 4, 1234)
    assert (job.retry_delay, job.retry_backoff, job.retry_delay_max) == (7, False, 70)
    assert job.dead_letter_job_type == "tick_dlq"
    assert job.status == JobStatus.PENDING
    assert q.get_jobs({"job_type": "paused"}) == []
    assert q.get_jobs({"job_type": "tock"}) == []


def test_overlap_skipped_while_last_job_is_active(q: Any) -> None:
    cron_id = q.add_cron_job("once", EVERY_SECOND, "t")
    wait_until_due(q, cron_id)
    assert q.enqueue_due_cron_jobs() == 1
    first = q.get_cron_job(cron_id)
    wait_until_due(q, cron_id)
    assert q.enqueue_due_cron_jobs() == 0  # the previous job is still pending
    skipped = q.get_cron_job(cron_id)
    assert skipped.last_job_id == first.last_job_id
    assert skipped.next_run_at > first.next_run_at
    assert len(q.get_all_jobs()) == 1
    q.cancel_job(first.last_job_id)
    wait_until_due(q, cron_id)
    assert q.enqueue_due_cron_jobs() == 1
    assert len(q.get_all_jobs()) == 2


def test_allow_overlap_enqueues_anyway(q: Any) -> None:
    cron_id = q.add_cron_job("overlap", EVERY_SECOND, "t", allow_overlap=True)
    wait_until_due(q, cron_id)
    assert q.enqueue_due_cron_jobs() == 1
    wait_until_due(q, cron_id)
    assert q.enqueue_due_cron_jobs() == 1
    assert len(q.get_all_jobs()) == 2


def test_concurrent_enqueue_happens_once(q: Any, queue_factory: Any) -> None:
    other = queue_factory()
    cron_id = q.add_cron_job("shared", EVERY_SECOND, "t", allow_overlap=True)
    wait_until_due(q, cron_id)
    assert q.enqueue_due_cron_jobs() + other.enqueue_due_cron_jobs() == 1
    assert len(q.get_all_jobs()) == 1
