"""PostgreSQL-only claim tests: those that arrange or inspect with raw SQL or need their own
connections (behaviour on every backend: tests/contract/test_primitives.py)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg
from _worker_helpers import run_threads
from dataqueue.backends.postgres.backend_sync import PostgresBackend
from dataqueue.maintenance_sync import reclaim_stuck_jobs
from dataqueue.options import normalize_job
from dataqueue.records import FailureReason, JobStatus

from .helpers import LEASE, add, claim_one


def test_group_cap_never_exceeded_by_concurrent_claimers(
    backend: PostgresBackend, sql: psycopg.Connection[Any]
) -> None:
    cap = 2
    backend.add_jobs([normalize_job({"job_type": "t", "group": "g"})] * 40)
    backend.add_jobs([normalize_job({"job_type": "t", "group": "h"})] * 10)
    backend.add_jobs([normalize_job({"job_type": "t"})] * 10)
    seen_max: Counter[str] = Counter()
    stop = threading.Event()

    def monitor() -> None:
        with psycopg.connect(sql.info.dsn, password="postgres", autocommit=True) as conn:
            while not stop.is_set():
                rows = conn.execute(
                    "SELECT group_id, count(*) FROM job_queue WHERE status = 'processing'"
                    " AND group_id IS NOT NULL GROUP BY group_id"
                ).fetchall()
                for group, count in rows:
                    seen_max[group] = max(seen_max[group], count)

    watcher = threading.Thread(target=monitor)
    watcher.start()

    def worker(i: int) -> None:
        for _ in range(25):
            jobs = backend.claim_jobs(f"w{i}", 3, lease=LEASE, group_concurrency=cap)
            time.sleep(0.002)
            for job in jobs:
                assert backend.complete_job(job.id, f"w{i}", job.lock_version)

    try:
        run_threads(6, worker)
    finally:
        stop.set()
        watcher.join()
    assert seen_max["g"] <= cap and seen_max["h"] <= cap
    # And with nobody finishing, exactly the cap is taken per group.
    held = []
    for i in range(5):
        held += backend.claim_jobs(f"x{i}", 10, lease=LEASE, group_concurrency=cap)
    per_group = Counter(j.group_id for j in held)
    assert per_group["g"] <= cap and per_group["h"] <= cap


def test_unmet_counter_and_cleanup_of_a_completed_prerequisite(
    backend: PostgresBackend, sql: psycopg.Connection[Any]
) -> None:
    first = add(backend, job_type="first")
    second = add(backend, job_type="second", depends_on={"job_ids": [first]})
    assert [j.id for j in backend.claim_jobs("w", 10, lease=LEASE)] == [first]
    assert backend.claim_jobs("w", 10, lease=LEASE) == []  # blocked, not even a candidate
    job = backend.get_job(first)
    assert job is not None
    assert backend.complete_job(first, "w", job.lock_version)
    # The prerequisite is cleaned up before the dependent runs: the dependent is not blocked.
    sql.execute("UPDATE job_queue SET updated_at = now() - interval '10 days' WHERE id = %s",
                (first,))  # fmt: skip
    assert backend.cleanup_old_jobs(1, [JobStatus.COMPLETED], 100) == 1
    assert backend.get_job(first) is None
    assert backend.get_job_events(first) == []
    assert [j.id for j in backend.claim_jobs("w", 10, lease=LEASE)] == [second]
    # A dependent added after its prerequisite completed starts unblocked.
    third = add(backend, depends_on={"job_ids": [second]})
    done = backend.get_job(second)
    assert done is not None and backend.complete_job(second, "w", done.lock_version)
    fourth = add(backend, depends_on={"job_ids": [second]})
    assert sorted(j.id for j in backend.claim_jobs("w", 10, lease=LEASE)) == [third, fourth]


def test_completion_waiting_for_an_adder_still_releases_its_dependent(
    backend: PostgresBackend, pg_url: str
) -> None:
    prereq = add(backend, job_type="p")
    job = claim_one(backend)
    results: list[bool] = []
    with psycopg.connect(pg_url) as conn:  # the adder's transaction stays open a while
        dependent = backend.add_jobs(
            [normalize_job({"job_type": "d", "depends_on": {"job_ids": [prereq]}})], db=conn
        )[0].id
        worker = threading.Thread(
            target=lambda: results.append(backend.complete_job(prereq, "w", job.lock_version))
        )
        worker.start()
        time.sleep(0.3)
        assert worker.is_alive()  # the completion waits for the adder's lock on the prerequisite
        conn.commit()
        worker.join()
    assert results == [True]
    assert claim_one(backend).id == dependent


def test_reclaim_expired_leases(backend: PostgresBackend, sql: psycopg.Connection[Any]) -> None:
    retryable = add(backend, max_attempts=2)
    exhausted = add(backend, max_attempts=1, dead_letter_job_type="dlq")
    child = add(backend, depends_on={"job_ids": [exhausted]})
    live = add(backend, max_attempts=1)
    jobs = backend.claim_jobs("w", 3, lease=timedelta(milliseconds=1))
    assert sorted(j.id for j in jobs) == [retryable, exhausted, live]
    backend.heartbeat("w", [live], timedelta(minutes=5))
    time.sleep(0.01)
    assert reclaim_stuck_jobs(backend, 10) == 2
    first = backend.get_job(retryable)
    assert first is not None and first.status == JobStatus.PENDING and first.attempts == 1
    lost = backend.get_job(exhausted)
    assert lost is not None and lost.status == JobStatus.FAILED
    assert lost.failure_reason == FailureReason.WORKER_LOST and lost.dead_letter_job_id
    dead = backend.get_job(lost.dead_letter_job_id)
    assert dead is not None and dead.job_type == "dlq"
    assert dead.payload["original_job"]["id"] == exhausted
    assert dead.payload["failure"]["reason"] == "worker_lost"
    cancelled = backend.get_job(child)
    assert cancelled is not None and cancelled.status == JobStatus.CANCELLED
    still = backend.get_job(live)
    assert still is not None and still.status == JobStatus.PROCESSING
    # A heartbeat keeps a long job alive; without signs of life past N minutes it is reclaimed.
    sql.execute("UPDATE job_queue SET locked_at = now() - interval '20 minutes',"
                " heartbeat_at = NULL WHERE id = %s", (live,))  # fmt: skip
    assert reclaim_stuck_jobs(backend, 10) == 1
