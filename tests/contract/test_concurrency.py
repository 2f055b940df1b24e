"""Races between several queue instances on the same storage (threads, real servers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from _worker_helpers import claim, complete
from dataqueue import JobStatus

WORKERS = 4


def race(fns: list[Callable[[], Any]]) -> list[Any]:
    """Run ``fns`` at the same moment on their own threads; return results in order."""
    barrier = threading.Barrier(len(fns))
    results: list[Any] = [None] * len(fns)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(10)
            results[i] = fns[i]()
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_concurrent_claimers_never_share_a_job(q: Any, queue_factory: Any) -> None:
    made = set(q.add_jobs([{"job_type": "t"} for _ in range(60)]))
    queues = [queue_factory() for _ in range(WORKERS)]
    claimed: list[list[int]] = [[] for _ in range(WORKERS)]

    def worker(i: int) -> Callable[[], None]:
        def loop() -> None:
            while batch := claim(queues[i], 5, worker_id=f"w{i}"):
                claimed[i].extend(j.id for j in batch)

        return loop

    race([worker(i) for i in range(WORKERS)])
    flat = [job_id for ids in claimed for job_id in ids]
    assert len(flat) == len(set(flat)), "a job was claimed twice"
    assert set(flat) == made


def test_group_cap_with_concurrent_claimers(q: Any, queue_factory: Any) -> None:
    q.add_jobs([{"job_type": "t", "group": f"g{i % 3}"} for i in range(30)])
    queues = [queue_factory() for _ in range(WORKERS)]
    got = race(
        [
            lambda qq=qq, i=i: claim(qq, 10, worker_id=f"w{i}", group_concurrency=1)
            for i, qq in enumerate(queues)
        ]
    )
    groups = [job.group_id for batch in got for job in batch]
    assert sorted(groups) == ["g0", "g1", "g2"]  # one per group, never more
    processing = q.get_jobs_by_status("processing")
    assert sorted(j.group_id for j in processing) == ["g0", "g1", "g2"]


def test_concurrent_idempotent_adds_create_one_job(q: Any, queue_factory: Any) -> None:
    queues = [queue_factory() for _ in range(WORKERS)]
    ids = race([lambda qq=qq: qq.add_job("t", idempotency_key="same") for qq in queues])
    assert len(set(ids)) == 1
    assert len(q.get_all_jobs()) == 1


def test_concurrent_cron_enqueue_happens_once(q: Any, queue_factory: Any) -> None:
    cron_id = q.add_cron_job("shared", "* * * * * *", "t", allow_overlap=True)
    due = q.get_cron_job(cron_id).next_run_at
    time.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()) + 0.05)
    queues = [queue_factory() for _ in range(WORKERS)]
    counts = race([qq.enqueue_due_cron_jobs for qq in queues])
    assert sum(counts) == 1
    assert len(q.get_all_jobs()) == 1


def test_complete_and_retry_race_has_one_winner(q: Any, queue_factory: Any) -> None:
    other = queue_factory()
    for _ in range(5):
        job_id = q.add_job("t")
        (job,) = claim(q, 1)
        done, retried = race([lambda j=job: complete(q, j), lambda i=job_id: other.retry_job(i)])
        final = q.get_job(job_id)
        if done and not retried:
            assert final.status == JobStatus.COMPLETED
        else:
            # the retry fenced the worker off (or came second and found nothing to retry)
            assert retried and not done and final.status == JobStatus.PENDING
        q.cancel_job(job_id)
