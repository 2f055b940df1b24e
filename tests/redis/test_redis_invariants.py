"""Randomised operations, then the Redis indexes are checked against the job hashes: the drain
counts are exact and no pending job is left blocked once its prerequisites are met."""

from __future__ import annotations

import json
import random

import pytest
import redis
from _workload import random_step
from dataqueue.backends.redis.backend_sync import RedisBackend

ACTIVE = {"pending", "processing", "waiting"}


def _check(b: RedisBackend, raw: redis.Redis) -> None:
    base = b.keys.base
    jobs = {int(k.rsplit(":", 1)[1]): raw.hgetall(k) for k in raw.scan_iter(f"{base}j:*")}
    tags = {i: set(json.loads(h["tags"])) if "tags" in h else set() for i, h in jobs.items()}
    for drain, count in raw.hgetall(base + "dcnt").items():
        want = set(json.loads(drain))
        exact = sum(1 for i, h in jobs.items() if h["status"] in ACTIVE and want <= tags[i])
        assert int(count) == exact, drain
    for i, h in jobs.items():
        if h["status"] != "pending" or h.get("loc") != "b":
            continue
        unmet = int(h.get("unmet", 0))
        if unmet == 0 and "dep_drain" in h:
            want = set(json.loads(h["dep_drain"]))
            others = sum(
                1 for j, g in jobs.items() if j != i and g["status"] in ACTIVE and want <= tags[j]
            )
            assert others > 0, f"job {i} is blocked on a clear drain"
        else:
            assert unmet > 0, f"job {i} is blocked with no unmet prerequisite"
            met = [
                p
                for p in json.loads(h["depends_on_job_ids"])
                if jobs.get(p, {}).get("status") == "completed"
            ]
            assert len(met) + unmet == len(json.loads(h["depends_on_job_ids"])), i
    groups: dict[str, int] = {}
    for h in jobs.values():
        if h["status"] == "processing" and "group_id" in h:
            group = str(h["group_id"])
            groups[group] = groups.get(group, 0) + 1
    assert {g: int(c) for g, c in raw.hgetall(base + "gact").items()} == groups


@pytest.mark.parametrize("seed", range(6))
def test_indexes_stay_consistent(backend: RedisBackend, raw: redis.Redis, seed: int) -> None:
    rng = random.Random(seed)
    ids: list[int] = []
    for n in range(250):
        # no cleanup: the check counts the met prerequisites of every blocked job
        random_step(backend, rng, ids, cleanup=False)
        if n % 25 == 24:
            _check(backend, raw)
    _check(backend, raw)
