"""Drive jobs through claim / complete / fail without a processor (test-only, not public API).

Each helper calls the queue's backend directly (``q._backend``; on the async twin the bridge
makes the calls synchronous), acting as a worker named ``worker_id``; :func:`run_once` runs one
round of a real processor instead.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from dataqueue import batch_dep_ref
from dataqueue.backends.types import KEEP, FailOutcome
from dataqueue.lifecycle import plan_failure
from dataqueue.records import FailureReason, JobRecord

WORKER = "test-worker"
LEASE = timedelta(seconds=60)

#: Short processor timings keep the suite fast; workers are woken by the backend anyway.
FAST = {"poll_interval": 0.2, "lease_seconds": 5.0}


def add_diamond(
    q: Any, types: Sequence[str] = ("fetch", "left", "right", "join"), **first: Any
) -> list[int]:
    """One ``add_jobs`` of a diamond: a first job (with the options ``first``), two jobs that
    depend on it and a last one that depends on both; returns the four ids in that order."""
    top, left, right, join = types
    ids: list[int] = q.add_jobs(
        [
            {"job_type": top, **first},
            {"job_type": left, "depends_on": {"job_ids": [batch_dep_ref(0)]}},
            {"job_type": right, "depends_on": {"job_ids": [batch_dep_ref(0)]}},
            {"job_type": join, "depends_on": {"job_ids": [batch_dep_ref(1), batch_dep_ref(2)]}},
        ]
    )
    return ids


def claim(
    q: Any,
    limit: int = 10,
    *,
    worker_id: str = WORKER,
    job_types: Sequence[str] | None = None,
    group_concurrency: int | None = None,
) -> list[JobRecord]:
    """Claim up to ``limit`` eligible jobs, as a processor would."""
    jobs: list[JobRecord] = q._backend.claim_jobs(
        worker_id, limit, job_types=job_types, group_concurrency=group_concurrency, lease=LEASE
    )
    return jobs


def claimed_ids(q: Any, limit: int = 100, **kwargs: Any) -> list[int]:
    """Ids of the jobs a claim returns, in claim order."""
    return [j.id for j in claim(q, limit, **kwargs)]


def claim_job(q: Any, job_id: int, **kwargs: Any) -> JobRecord:
    """Claim and return job ``job_id``; fail the test if it is not claimable right now.

    Claims one job at a time, narrowed to the job's type (unless ``job_types`` is given); jobs
    of that type ahead of it in claim order are left ``processing``.
    """
    if "job_types" not in kwargs:
        record = q.get_job(job_id)
        assert record is not None, f"job {job_id} does not exist"
        kwargs["job_types"] = [record.job_type]
    while True:  # one at a time, so jobs queued behind this one stay pending
        got = claim(q, 1, **kwargs)
        if not got:
            raise AssertionError(f"job {job_id} was not claimable")
        if got[0].id == job_id:
            return got[0]


def complete(q: Any, job: JobRecord, output: Any = KEEP) -> bool:
    """Complete a job this test claimed (fenced by its lock)."""
    done: bool = q._backend.complete_job(job.id, job.locked_by, job.lock_version, output)
    return done


def fail(
    q: Any,
    job: JobRecord,
    message: str = "boom",
    reason: FailureReason | None = FailureReason.HANDLER_ERROR,
    retry_delay_seconds: float = 0.0,
) -> FailOutcome:
    """Fail a job this test claimed; it retries after ``retry_delay_seconds`` if attempts
    remain."""
    plan = plan_failure(job, message, reason, retry_delay_seconds=retry_delay_seconds)
    outcome: FailOutcome = q._backend.fail_job(job.id, job.locked_by, job.lock_version, plan)
    return outcome


def run(q: Any, job_id: int, output: Any = KEEP) -> JobRecord:
    """Claim job ``job_id`` and complete it; return the stored record afterwards."""
    job = claim_job(q, job_id)
    assert complete(q, job, output)
    record = q.get_job(job_id)
    assert record is not None
    return record  # type: ignore[no-any-return]


def fail_terminally(q: Any, job_id: int, message: str = "boom") -> FailOutcome:
    """Claim and fail job ``job_id`` until it has no attempts left; return the last outcome."""
    while True:
        outcome = fail(q, claim_job(q, job_id), message)
        if not outcome.will_retry:
            return outcome


def run_threads(n: int, target: Any) -> None:
    """Run ``target(i)`` for i in 0..n-1 on n threads released together; re-raise failures."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def stop_processor(processor: Any) -> None:
    """Stop and drain a processor a test started; close a blocking one's private loop."""
    try:
        processor.stop_and_drain(5)
    finally:
        close = getattr(processor, "close", None)
        if close is not None:
            close()


def run_once(q: Any, handlers: Any = None, **options: Any) -> int:
    """One round of a processor (``handlers``, else the queue's tasks) with fast timings;
    returns how many jobs it processed."""
    processor = q.create_processor(handlers if handlers is not None else q.tasks, **FAST, **options)
    try:
        return int(processor.start())
    finally:
        stop_processor(processor)
