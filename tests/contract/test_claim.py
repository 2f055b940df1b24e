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


def test_priority_then_fifo_within_one_batch_for_extreme_priorities(q: Any) -> None:
    # One add_jobs call: every job shares the same server millisecond, so only the id orders
    # jobs of one priority, at the ends of the int32 range as in the middle.
    top = 2**31 - 1
    levels = [top, -top - 1, 0, top - 1, -top, 1, -1]
    priorities = [levels[i % len(levels)] for i in range(700)]
    ids = q.add_jobs([{"job_type": "t", "priority": p} for p in priorities])
    expected = sorted(range(len(ids)), key=lambda i: (-priorities[i], ids[i]))
    assert claimed_ids(q, 1000) == [ids[i] for i in expected]


def test_fifo_across_separate_inserts_and_types(q: Any) -> None:
    ids = [q.add_job(f"t{i % 3}", priority=7) for i in range(30)]
    assert claimed_ids(q) == ids
    more = q.add_jobs([{"job_type": "t0"}, {"job_type": "t1", "priority": 1}])
    assert claimed_ids(q, 1, job_types=["t0", "t1"]) == [more[1]]


def test_no_starvation_behind_blocked_filtered_and_capped_jobs(q: Any) -> None:
    n = 2000
    gate = q.add_job("gate", priority=-10)
    # Ahead of the eligible job (higher priority, older): n blocked by an unmet dependency,
    # n of a type the claimer does not handle, n in a group that is at its cap.
    q.add_jobs([{"job_type": "t", "priority": 100, "depends_on": {"job_ids": [gate]}}] * n)
    q.add_jobs([{"job_type": "other", "priority": 100}] * n)
    busy = q.add_job("t", priority=200, group="g")
    assert claimed_ids(q, 1, job_types=["t"], group_concurrency=1) == [busy]
    q.add_jobs([{"job_type": "t", "priority": 100, "group": "g"}] * n)
    eligible = q.add_job("t", priority=-5)
    assert claimed_ids(q, 1, job_types=["t"], group_concurrency=1) == [eligible]


def test_jobs_blocked_by_a_tag_drain_do_not_starve_others(q: Any) -> None:
    q.add_job("t", tags=["x"], priority=-1)
    q.add_jobs([{"job_type": "t", "priority": 50, "depends_on": {"tags": ["x"]}}] * 500)
    free = q.add_job("t", priority=10)
    assert claimed_ids(q, 1) == [free]
