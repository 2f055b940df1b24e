"""Persistent job events, lifecycle timestamps and output semantics."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from _worker_helpers import claim_job, complete, fail
from dataqueue import JobEventType, JobStatus

UTC = timezone.utc


def kinds(q: Any, job_id: int) -> list[JobEventType]:
    return [e.event_type for e in q.get_job_events(job_id)]


def test_added_then_processing_then_completed(q: Any) -> None:
    job_id = q.add_job("t", {"x": 1}, tags=["a"])
    assert kinds(q, job_id) == [JobEventType.ADDED]
    complete(q, claim_job(q, job_id))
    evs = q.get_job_events(job_id)
    assert [e.event_type for e in evs] == [
        JobEventType.ADDED,
        JobEventType.PROCESSING,
        JobEventType.COMPLETED,
    ]
    assert all(e.job_id == job_id for e in evs)
    assert evs[0].created_at <= evs[1].created_at <= evs[2].created_at
    assert evs[0].metadata is not None and evs[0].metadata.get("job_type") == "t"


def test_failed_and_retried_events(q: Any) -> None:
    job_id = q.add_job("t", max_attempts=1)
    fail(q, claim_job(q, job_id), "nope")
    q.retry_job(job_id)
    evs = q.get_job_events(job_id)
    assert [e.event_type for e in evs] == [
        JobEventType.ADDED,
        JobEventType.PROCESSING,
        JobEventType.FAILED,
        JobEventType.RETRIED,
    ]
    assert evs[2].metadata is not None and evs[2].metadata.get("message") == "nope"


def test_cancelled_event(q: Any) -> None:
    job_id = q.add_job("t")
    q.cancel_job(job_id)
    assert kinds(q, job_id) == [JobEventType.ADDED, JobEventType.CANCELLED]


def test_no_events_for_no_ops(q: Any) -> None:
    job_id = q.add_job("t")
    complete(q, claim_job(q, job_id))
    q.retry_job(job_id)
    q.cancel_job(job_id)
    q.edit_job(job_id, priority=3)
    assert kinds(q, job_id) == [
        JobEventType.ADDED,
        JobEventType.PROCESSING,
        JobEventType.COMPLETED,
    ]


def test_stale_completion_records_nothing(q: Any) -> None:
    job_id = q.add_job("t")
    job = claim_job(q, job_id)
    assert complete(q, job)
    assert complete(q, job) is False
    assert kinds(q, job_id).count(JobEventType.COMPLETED) == 1


def test_lifecycle_timestamps(q: Any) -> None:
    start = datetime.now(UTC) - timedelta(seconds=5)
    job_id = q.add_job("t", max_attempts=2)
    first = claim_job(q, job_id)
    assert first.started_at is not None and first.started_at >= start
    assert first.locked_at is not None and first.locked_by is not None
    fail(q, first)
    failed = q.get_job(job_id)
    assert failed.last_failed_at is not None and failed.last_failed_at >= first.started_at
    second = claim_job(q, job_id)
    assert second.last_retried_at is not None
    complete(q, second)
    done = q.get_job(job_id)
    assert done.completed_at is not None and done.completed_at >= second.locked_at
    assert done.locked_by is None and done.locked_at is None
    assert done.status == JobStatus.COMPLETED
    other = q.add_job("t")
    q.cancel_job(other)
    assert q.get_job(other).last_cancelled_at is not None


def test_output_semantics(q: Any) -> None:
    with_output, without_output, preset, explicit_null, scalar = (q.add_job("t") for _ in range(5))
    complete(q, claim_job(q, with_output), {"result": [1, 2]})
    complete(q, claim_job(q, without_output))
    job = claim_job(q, preset)
    assert q._backend.set_output(preset, job.locked_by, job.lock_version, '{"partial": true}')
    complete(q, job)  # no output given: the earlier one survives
    complete(q, claim_job(q, explicit_null), None)
    complete(q, claim_job(q, scalar), 42)
    assert q.get_job(with_output).output == {"result": [1, 2]}
    assert q.get_job(without_output).output is None
    assert q.get_job(preset).output == {"partial": True}
    assert q.get_job(explicit_null).output is None
    assert q.get_job(scalar).output == 42


def test_progress_is_stored(q: Any) -> None:
    job_id = q.add_job("t")
    job = claim_job(q, job_id)
    assert q._backend.set_progress(job_id, job.locked_by, job.lock_version, 40)
    assert q.get_job(job_id).progress == 40
