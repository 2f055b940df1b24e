"""Concurrent Redis claimers, with the group counters inspected raw (claim order and
starvation on every backend: tests/contract/test_claim.py)."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from _redis_fixtures import REDIS_URL
from dataqueue.backends.redis.backend_sync import RedisBackend
from dataqueue.backends.redis.config import RedisSettings
from dataqueue.options import normalize_job

LEASE = timedelta(seconds=60)
INT32_MAX = 2**31 - 1


def _add(b: RedisBackend, jobs: list[dict[str, Any]]) -> list[int]:
    return [a.id for a in b.add_jobs([normalize_job(j) for j in jobs])]


def test_concurrent_claimers_never_double_claim_nor_exceed_group_caps(prefix: str) -> None:
    cap, groups, per_group = 2, 5, 40
    setup = RedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix))
    jobs = [{"job_type": "t", "group": f"g{i % groups}"} for i in range(groups * per_group)]
    jobs += [{"job_type": "t"} for _ in range(50)]
    _add(setup, jobs)
    claimed: list[int] = []
    spans: list[tuple[str | None, datetime, datetime]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        b = RedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix))
        try:
            while True:
                got = b.claim_jobs(name, 3, group_concurrency=cap, lease=LEASE)
                if not got:
                    if b.get_jobs_by_status("pending", 1, 0) == []:  # type: ignore[arg-type]
                        return
                    continue
                with lock:
                    claimed.extend(j.id for j in got)
                for j in got:
                    assert b.complete_job(j.id, name, j.lock_version)
                    done = b.get_job(j.id)
                    assert done is not None and done.completed_at is not None
                    assert j.locked_at is not None
                    with lock:
                        spans.append((j.group_id, j.locked_at, done.completed_at))
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            b.close()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(claimed) == len(jobs) and len(set(claimed)) == len(jobs)
    # Server-clock intervals [claimed, completed) per group never overlap more than `cap`.
    by_group: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for group, start, end in spans:
        if group is not None:
            by_group[group] += [(start, 1), (end, -1)]
    for points in by_group.values():
        running = peak = 0
        for _, delta in sorted(points, key=lambda p: (p[0], p[1])):
            running += delta
            peak = max(peak, running)
        assert peak <= cap
    assert setup.client.hgetall(setup.keys.base + "gact") == {}  # the counters never drift
    setup.close()
