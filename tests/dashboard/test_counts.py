"""The dashboard's counts per (type, status) stay exact through every kind of status change:
a random workload (enqueue with prerequisites and tag drains, claims, completions, failures with
retries and dead letters, waits on tokens, cancels with cascades, retries, edits, reclaims,
cleanup), checked against a full listing of the jobs on both backends. On Redis the counts the
write scripts keep are also checked against a recount from the status indexes."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from _worker_helpers import claim_job, complete
from _workload import random_step
from dataqueue.records import JobStatus

BIG = 1_000_000


def _listed(b: Any) -> Counter[tuple[str, str]]:
    return Counter((j.job_type, j.status.value) for j in b.get_all_jobs(BIG, 0))


def _counted(b: Any) -> dict[tuple[str, str], tuple[int, bool]]:
    return {(c.job_type, c.status.value): (c.count, c.capped) for c in b.count_jobs(BIG)}


def _blocked(b: Any) -> dict[str, int]:
    return {c.job_type: c.blocked for c in b.count_jobs(BIG, [JobStatus.PENDING])}


def _recounted_alike(b: Any, raw: Any) -> int:
    """Redis: the kept counts equal a recount from the status indexes (forced by forgetting
    that they are kept); returns how many pending jobs are blocked."""
    kept, blocked = _counted(b), _blocked(b)
    raw.hdel(f"{b.keys.base}cnt", "_v")
    assert (_counted(b), _blocked(b)) == (kept, blocked)
    return sum(blocked.values())


@pytest.mark.parametrize("seed", range(3))
def test_counts_match_the_jobs_through_a_random_workload(place: Any, sq: Any, seed: int) -> None:
    b = sq._backend
    raw = None
    if place.backend == "redis":
        import redis

        raw = redis.Redis.from_url(place.url, decode_responses=True)
    rng = random.Random(seed)
    ids: list[int] = []
    seen: set[str] = set()
    blocked = 0
    try:
        for n in range(240):
            random_step(b, rng, ids)
            if n % 40 == 39:
                listed = _listed(b)
                seen.update(st for _, st in listed)
                want = {k: (v, False) for k, v in listed.items()}
                assert _counted(b) == want, f"after step {n}"
                if raw is not None:
                    blocked += _recounted_alike(b, raw)
    finally:
        if raw is not None:
            raw.close()
    assert len(seen) == len(JobStatus), seen  # the workload reached every status
    assert raw is None or blocked > 0  # and blocked jobs


def test_blocked_and_oldest_pending_per_type(place: Any, sq: Any) -> None:
    first = sq.add_job("old", {})
    sq.add_jobs([{"job_type": "new"} for _ in range(3)])
    gate = sq.add_job("gate", {}, tags=["etl"])
    sq.add_job("new", {}, depends_on={"job_ids": [first]})
    sq.add_job("new", {}, depends_on={"tags": ["etl"]})
    pending = {c.job_type: c for c in sq._backend.count_jobs(BIG, [JobStatus.PENDING])}
    assert (pending["new"].count, pending["new"].blocked) == (5, 2)
    assert (pending["old"].count, pending["old"].blocked) == (1, 0)
    old = sq.get_job(first)
    assert pending["old"].oldest_created_at == old.created_at
    newest_new = min(j.created_at for j in sq.get_jobs({"job_type": "new"}, limit=10))
    assert pending["new"].oldest_created_at == newest_new
    complete(sq, claim_job(sq, gate))  # the drain clears: that job is no longer blocked
    after = {c.job_type: c for c in sq._backend.count_jobs(BIG, [JobStatus.PENDING])}
    assert (after["new"].count, after["new"].blocked) == (5, 1)
    assert "gate" not in after
