"""Redis wake-ups: published only while some worker relies on them (``idle``: a short claim or a
new subscription), and saying whether the earliest delayed job changed (contract behaviour on
every backend: tests/contract/test_wake_ups.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from dataqueue.backends.redis.backend_sync import RedisBackend
from dataqueue.backends.redis.keys import WAKE_READY
from dataqueue.backends.types import KEEP
from dataqueue.options import normalize_job

LEASE = timedelta(seconds=60)


def _add(b: RedisBackend, **options: Any) -> int:
    return int(b.add_jobs([normalize_job({"job_type": "t", **options})])[0].id)


def _messages(sub: Any, wait: float = 0.3) -> list[str]:
    out: list[str] = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        m = sub.get_message(timeout=left)
        if m is not None:
            out.append(m["data"])
    return out


def test_a_busy_worker_is_not_woken_but_an_idle_one_is(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    sub = raw.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(backend.keys.wake)
    try:
        _messages(sub, 0.1)
        pre = _add(backend)
        dep = _add(backend, depends_on={"job_ids": [pre]})
        _add(backend)
        raw.delete(backend.keys.idle)  # as if every worker were busy
        # A full claim (2 of 2): its worker keeps claiming without being told.
        claimed = {j.id: j for j in backend.claim_jobs("w", 2, lease=LEASE)}
        assert pre in claimed and len(claimed) == 2
        assert not raw.exists(backend.keys.idle)
        assert backend.complete_jobs([(pre, "w", claimed[pre].lock_version, KEEP)]) == [True]
        assert _messages(sub) == []  # the dependent was released, nobody was woken
        # A short claim: its worker now relies on wake-ups.
        got = backend.claim_jobs("w", 10, lease=LEASE)
        assert [j.id for j in got] == [dep]
        assert raw.exists(backend.keys.idle)
        _add(backend)
        assert _messages(sub) == [WAKE_READY]  # one message, and it clears the mark
        assert not raw.exists(backend.keys.idle)
        _add(backend)
        assert _messages(sub) == []
        # A new earliest delayed job says so: waiters re-arm their timers.
        backend.claim_jobs("w", 10, lease=LEASE)
        _add(backend, run_at=datetime.now(UTC) + timedelta(hours=1))
        assert _messages(sub) == ["d"]
    finally:
        sub.close()


def test_a_new_subscription_marks_its_worker_idle(backend: RedisBackend, raw: redis.Redis) -> None:
    raw.delete(backend.keys.idle)
    assert backend.wait_for_work(0) is True  # subscribes
    assert raw.exists(backend.keys.idle)
    _add(backend)
    assert backend.wait_for_work(2) is True
    assert not raw.exists(backend.keys.idle)
