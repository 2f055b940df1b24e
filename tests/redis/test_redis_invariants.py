"""Randomised operations, then the Redis indexes are checked against the job hashes: the drain
counts are exact and no pending job is left blocked once its prerequisites are met."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest
import redis
from dataqueue.backends.redis.backend_sync import RedisBackend
from dataqueue.lifecycle import plan_failure
from dataqueue.maintenance_sync import reclaim_stuck_jobs
from dataqueue.options import JobUpdates, normalize_job
from dataqueue.records import FailureReason

LEASE = timedelta(seconds=60)
ACTIVE = {"pending", "processing", "waiting"}
TAGS = ["a", "b", "c"]


def _random_tags(rng: random.Random) -> list[str] | None:
    tags = [t for t in TAGS if rng.random() < 0.4]
    return tags or None


def _step(b: RedisBackend, rng: random.Random, ids: list[int]) -> None:
    op = rng.random()
    if op < 0.35 or not ids:
        job: dict[str, Any] = {
            "job_type": rng.choice(["x", "y"]),
            "tags": _random_tags(rng),
            "max_attempts": rng.choice([1, 2]),
        }
        if rng.random() < 0.3:
            job["group"] = rng.choice(["g1", "g2"])
        deps: dict[str, Any] = {}
        if ids and rng.random() < 0.3:
            deps["job_ids"] = rng.sample(ids, min(len(ids), rng.randint(1, 2)))
        if rng.random() < 0.3:
            deps["tags"] = rng.sample(TAGS, rng.randint(1, 2))
        if deps:
            job["depends_on"] = deps
        ids.append(b.add_jobs([normalize_job(job)])[0].id)
    elif op < 0.55:
        for j in b.claim_jobs(
            "w", rng.randint(1, 3), group_concurrency=rng.choice([None, 1]), lease=LEASE
        ):
            r = rng.random()
            if r < 0.5:
                b.complete_job(j.id, "w", j.lock_version)
            elif r < 0.8:
                b.fail_job(
                    j.id,
                    "w",
                    j.lock_version,
                    plan_failure(j, "x", FailureReason.HANDLER_ERROR, retry_delay_seconds=0),
                )
            elif r < 0.9:
                token = b.create_token(j.id, None, None)
                b.wait_job(
                    j.id, "w", j.lock_version, wait_until=None, token_id=token.id, step_data={}
                )
                if rng.random() < 0.7:
                    b.complete_token(token.id, None)
            # else: left processing
    elif op < 0.65:
        b.cancel_job(rng.choice(ids))
    elif op < 0.75:
        b.retry_job(rng.choice(ids))
    elif op < 0.85:
        b.edit_job(
            rng.choice(ids),
            JobUpdates.parse({"tags": _random_tags(rng), "priority": rng.randint(-2, 2)}),
        )
    else:
        reclaim_stuck_jobs(b, 0)


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
        _step(backend, rng, ids)
        if n % 25 == 24:
            _check(backend, raw)
    _check(backend, raw)
