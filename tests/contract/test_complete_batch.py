"""Batched completion (``backend.complete_jobs``, what the processor flushes through): per item
the same fence, output and release of dependents as ``complete_job``, in one call."""

from __future__ import annotations

from typing import Any

import pytest
from _worker_helpers import WORKER, claim, claim_job
from dataqueue import InvalidJobError, JobEventType, JobStatus
from dataqueue.backends.types import KEEP


def _events(q: Any, job_id: int) -> list[JobEventType]:
    return [e.event_type for e in q.get_job_events(job_id)]


def test_fence_and_output_per_item(q: Any) -> None:
    ids = q.add_jobs([{"job_type": "t"} for _ in range(5)])
    jobs = {j.id: j for j in claim(q, 10)}
    a, b, c, d, e = (jobs[i] for i in ids)
    assert q._backend.set_output(c.id, WORKER, c.lock_version, '{"kept": true}')
    items = [
        (a.id, WORKER, a.lock_version, {"n": 1}),  # completes with an output
        (b.id, "someone-else", b.lock_version, KEEP),  # wrong worker
        (c.id, WORKER, c.lock_version, KEEP),  # keeps what the handler stored
        (d.id, WORKER, d.lock_version + 1, None),  # stale lock version
        (e.id, WORKER, e.lock_version, None),  # JSON null is an output, not KEEP
        (a.id, WORKER, a.lock_version, {"n": 2}),  # the same job again: already done
    ]
    assert q._backend.complete_jobs(items) == [True, False, True, False, True, False]
    done = {i: q.get_job(i) for i in ids}
    for job in (done[a.id], done[c.id], done[e.id]):
        assert job.status == JobStatus.COMPLETED and job.completed_at is not None
        assert job.locked_by is None and job.locked_at is None and job.lease_expires_at is None
        assert _events(q, job.id)[-1] == JobEventType.COMPLETED
        assert _events(q, job.id).count(JobEventType.COMPLETED) == 1
    assert done[a.id].output == {"n": 1}
    assert done[c.id].output == {"kept": True}
    assert done[e.id].output is None
    for job in (done[b.id], done[d.id]):
        assert job.status == JobStatus.PROCESSING and job.locked_by == WORKER
        assert JobEventType.COMPLETED not in _events(q, job.id)
    # A completed job cannot be completed again.
    assert q._backend.complete_jobs([(a.id, WORKER, a.lock_version, KEEP)]) == [False]


def test_empty_batch(q: Any) -> None:
    assert q._backend.complete_jobs([]) == []


def test_bad_output_writes_nothing(q: Any) -> None:
    ids = q.add_jobs([{"job_type": "t"} for _ in range(2)])
    jobs = {j.id: j for j in claim(q, 10)}
    items = [
        (ids[0], WORKER, jobs[ids[0]].lock_version, {"ok": 1}),
        (ids[1], WORKER, jobs[ids[1]].lock_version, {"bad": object()}),
    ]
    with pytest.raises(InvalidJobError):
        q._backend.complete_jobs(items)
    assert all(q.get_job(i).status == JobStatus.PROCESSING for i in ids)


def test_dependents_released_once_all_prerequisites_complete(q: Any) -> None:
    p1, p2, p3 = (q.add_job("pre") for _ in range(3))
    both = q.add_job("dep", depends_on={"job_ids": [p1, p2]})  # both in the batch
    partial = q.add_job("dep", depends_on={"job_ids": [p1, p3]})  # p3 is not
    jobs = {j.id: j for j in claim(q, 10, job_types=["pre"])}
    assert set(jobs) == {p1, p2, p3}
    assert claim(q, 10, job_types=["dep"]) == []
    items = [(i, WORKER, jobs[i].lock_version, KEEP) for i in (p2, p1)]
    assert q._backend.complete_jobs(items) == [True, True]
    assert [j.id for j in claim(q, 10, job_types=["dep"])] == [both]
    assert q.get_job(partial).status == JobStatus.PENDING
    assert q._backend.complete_jobs([(p3, WORKER, jobs[p3].lock_version, KEEP)]) == [True]
    assert claim_job(q, partial).id == partial


def test_many_jobs_in_one_batch(q: Any) -> None:
    ids = q.add_jobs([{"job_type": "t", "payload": {"i": i}} for i in range(120)])
    jobs = claim(q, 200)
    assert len(jobs) == 120
    items = [(j.id, WORKER, j.lock_version, {"i": j.payload["i"]}) for j in reversed(jobs)]
    assert q._backend.complete_jobs(items) == [True] * 120
    for job_id in ids[::17]:
        record = q.get_job(job_id)
        assert record.status == JobStatus.COMPLETED and record.output == record.payload
