"""Claim order, scheduling, type filters, limits and group caps (through the backend)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from _worker_helpers import claim, claimed_ids, complete
from dataqueue import JobEventType, JobStatus

UTC = timezone.utc


def test_claim_order_priority_then_fifo(q: Any) -> None:
    a = q.add_job("t", priority=0)
    b = q.add_job("t", priority=5)
    c = q.add_job("t", priority=0)
    d = q.add_job("t", priority=5)
    e = q.add_job("t", priority=-1)
    assert claimed_ids(q) == [b, d, a, c, e]


def test_batch_inserted_jobs_claim_in_id_order(q: Any) -> None:
    ids = q.add_jobs([{"job_type": "t"} for _ in range(6)])
    assert claimed_ids(q) == ids


def test_claim_marks_processing_and_records_event(q: Any) -> None:
    job_id = q.add_job("t")
    (job,) = claim(q, worker_id="w-1")
    assert job.id == job_id and job.status == JobStatus.PROCESSING
    assert job.attempts == 1 and job.locked_by == "w-1"
    assert job.lease_expires_at is not None
    stored = q.get_job(job_id)
    assert stored.status == JobStatus.PROCESSING and stored.lock_version == job.lock_version
    assert [e.event_type for e in q.get_job_events(job_id)][-1] == JobEventType.PROCESSING
    assert claim(q) == []  # a claimed job is not handed out twice


def test_future_run_at_is_not_claimed(q: Any) -> None:
    later = q.add_job("t", run_at=datetime.now(UTC) + timedelta(hours=1))
    past = q.add_job("t", run_at=datetime.now(UTC) - timedelta(hours=1))
    assert claimed_ids(q) == [past]
    assert q.get_job(later).status == JobStatus.PENDING


def test_job_type_filter_and_limit(q: Any) -> None:
    emails = [q.add_job("email") for _ in range(3)]
    sms = q.add_job("sms")
    assert claimed_ids(q, 2, job_types=["email"]) == emails[:2]
    assert claimed_ids(q, 10, job_types=["sms", "push"]) == [sms]
    assert claimed_ids(q, 10) == emails[2:]


def test_group_cap_holds_across_workers(q: Any) -> None:
    g1a = q.add_job("t", group="g1")
    g1b = q.add_job("t", group="g1")
    g2 = q.add_job("t", group={"id": "g2", "tier": "gold"})
    free = q.add_job("t")
    first = claim(q, 10, worker_id="a", group_concurrency=1)
    assert [j.id for j in first] == [g1a, g2, free]
    assert claim(q, 10, worker_id="b", group_concurrency=1) == []
    complete(q, first[0])
    assert claimed_ids(q, 10, worker_id="b", group_concurrency=1) == [g1b]


def test_two_claimers_never_share_a_job(q: Any, queue_factory: Any) -> None:
    other = queue_factory()
    made = set(q.add_jobs([{"job_type": "t"} for _ in range(20)]))
    got_a = claimed_ids(q, 7, worker_id="a")
    got_b = claimed_ids(other, 100, worker_id="b")
    assert not set(got_a) & set(got_b)
    assert set(got_a) | set(got_b) == made
