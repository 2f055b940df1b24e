"""Every write a handler can cause is fenced by (worker, lock version) on both backends.

A worker whose lease lapsed (or whose job was retried) while its handler ran must not change
the job another worker now holds or has finished: progress, output and step data are refused
like its completion, wait and prolong (SPEC §10.2), and a fresh job's step data reads the same
on both backends.
"""

from __future__ import annotations

import json
from typing import Any

from _worker_helpers import LEASE, claim_job, complete
from dataqueue import JobStatus


def _write_all(q: Any, job: Any, worker: str, mark: str) -> tuple[bool, bool, bool]:
    b = q._backend
    return (
        b.set_progress(job.id, worker, job.lock_version, 42),
        b.set_output(job.id, worker, job.lock_version, json.dumps({"by": mark})),
        b.set_step_data(job.id, worker, job.lock_version, {"step": mark}),
    )


def test_holder_writes_apply(q: Any) -> None:
    job_id = q.add_job("t")
    job = claim_job(q, job_id, worker_id="worker-a")
    assert _write_all(q, job, "worker-a", "a") == (True, True, True)
    stored = q.get_job(job_id)
    assert stored.progress == 42
    assert stored.output == {"by": "a"}
    assert stored.step_data == {"step": "a"}


def test_stale_worker_writes_are_refused_while_another_holds_the_job(q: Any) -> None:
    job_id = q.add_job("t")
    stale = claim_job(q, job_id, worker_id="worker-a")
    assert q.retry_job(job_id) is True  # fences worker-a off, as a reclaim would
    fresh = claim_job(q, job_id, worker_id="worker-b")
    assert _write_all(q, fresh, "worker-b", "b") == (True, True, True)
    assert _write_all(q, stale, "worker-a", "a") == (False, False, False)
    # the same worker id with the old lock version (a self re-claim) is stale as well
    assert _write_all(q, stale, "worker-b", "a") == (False, False, False)
    stored = q.get_job(job_id)
    assert stored.output == {"by": "b"} and stored.step_data == {"step": "b"}
    assert stored.status == JobStatus.PROCESSING


def test_stale_worker_cannot_overwrite_a_completed_jobs_output(q: Any) -> None:
    job_id = q.add_job("t")
    stale = claim_job(q, job_id, worker_id="worker-a")
    assert q.retry_job(job_id) is True
    fresh = claim_job(q, job_id, worker_id="worker-b")
    assert complete(q, fresh, {"by": "b"})
    before = q.get_job(job_id)
    assert _write_all(q, stale, "worker-a", "a") == (False, False, False)
    assert _write_all(q, fresh, "worker-b", "late") == (False, False, False)
    assert q.get_job(job_id) == before
    assert before.output == {"by": "b"}


def test_writes_to_a_pending_or_missing_job_are_refused(q: Any) -> None:
    job_id = q.add_job("t")
    job = claim_job(q, job_id)
    assert q._backend.prolong_job(job_id, job.locked_by, job.lock_version, LEASE)
    assert q.retry_job(job_id) is True  # back to pending: nobody holds it
    assert _write_all(q, job, job.locked_by, "x") == (False, False, False)
    assert q.get_job(job_id).output is None
    assert q._backend.set_output(987654, "w", 1, "1") is False


def test_fresh_job_step_data_is_an_empty_object_on_both_backends(q: Any) -> None:
    job_id = q.add_job("t")
    assert q.get_job(job_id).step_data == {}
    job = claim_job(q, job_id)
    assert job.step_data == {}
    assert complete(q, job)
    assert q.get_job(job_id).step_data == {}
