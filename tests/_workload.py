"""A random workload for invariant tests: one step applies one randomly chosen operation of the
job lifecycle to a (blocking) backend, acting as worker ``w``.

Used by the dashboard count test (both backends) and the Redis index test, which check what
the backend keeps against the jobs themselves after many steps.
"""

from __future__ import annotations

import contextlib
import random
from datetime import timedelta
from typing import Any

from dataqueue.errors import UnknownPrerequisiteError
from dataqueue.lifecycle import plan_failure
from dataqueue.maintenance_sync import cleanup_old_jobs, reclaim_stuck_jobs
from dataqueue.options import JobUpdates, normalize_job
from dataqueue.records import FailureReason, JobStatus

LEASE = timedelta(seconds=60)
TAGS = ["a", "b", "c"]


def _tags(rng: random.Random) -> list[str] | None:
    return [t for t in TAGS if rng.random() < 0.4] or None


def random_step(b: Any, rng: random.Random, ids: list[int], *, cleanup: bool = True) -> None:
    """Enqueue (with prerequisites, tag drains, groups, dead letters), claim and finish
    (complete, fail with a retry or for good, park on a token that may complete), cancel,
    retry, edit, reclaim or, with ``cleanup``, delete finished jobs. ``ids`` collects the
    enqueued ids."""
    op = rng.random()
    if op < 0.35 or not ids:
        job: dict[str, Any] = {
            "job_type": rng.choice(["x", "y", "z:1"]),
            "tags": _tags(rng),
            "max_attempts": rng.choice([1, 2]),
        }
        if rng.random() < 0.2:
            job["dead_letter_job_type"] = "dead"
        if rng.random() < 0.3:
            job["group"] = rng.choice(["g1", "g2"])
        deps: dict[str, Any] = {}
        if ids and rng.random() < 0.35:
            deps["job_ids"] = rng.sample(ids, min(len(ids), rng.randint(1, 2)))
        if rng.random() < 0.25:
            deps["tags"] = rng.sample(TAGS, rng.randint(1, 2))
        if deps:
            job["depends_on"] = deps
        with contextlib.suppress(UnknownPrerequisiteError):  # a prerequisite cleaned up
            ids.append(b.add_jobs([normalize_job(job)])[0].id)
    elif op < 0.6:
        for j in b.claim_jobs(
            "w", rng.randint(1, 3), group_concurrency=rng.choice([None, 1]), lease=LEASE
        ):
            r = rng.random()
            if r < 0.45:
                b.complete_job(j.id, "w", j.lock_version, None)
            elif r < 0.8:
                plan = plan_failure(j, "x", FailureReason.HANDLER_ERROR, retry_delay_seconds=0)
                b.fail_job(j.id, "w", j.lock_version, plan)
            elif r < 0.9:
                token = b.create_token(j.id, None, None)
                b.wait_job(
                    j.id, "w", j.lock_version, wait_until=None, token_id=token.id, step_data={}
                )
                if rng.random() < 0.6:
                    b.complete_token(token.id, None)
            # else: left processing (reclaimed later, or counted as processing)
    elif op < 0.7:
        b.cancel_job(rng.choice(ids))
    elif op < 0.78:
        b.retry_job(rng.choice(ids))
    elif op < 0.88:
        b.edit_job(
            rng.choice(ids),
            JobUpdates.parse({"tags": _tags(rng), "priority": rng.randint(-2, 2)}),
        )
    elif op < 0.94 or not cleanup:
        reclaim_stuck_jobs(b, 0)
    else:
        cleanup_old_jobs(b, 0, [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED], 7)
