"""Redis wake-ups: published only while some worker relies on them (``idle``: a short claim or a
new subscription), and saying whether the earliest delayed job changed (contract behaviour on
every backend: tests/contract/test_wake_ups.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import redis.asyncio
from _redis_fixtures import REDIS_URL
from dataqueue.backends.redis import unread
from dataqueue.backends.redis.backend_async import AsyncRedisBackend
from dataqueue.backends.redis.backend_sync import RedisBackend
from dataqueue.backends.redis.config import RedisSettings
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


def _burst(raw: redis.Redis, channel: str, n: int = 3) -> None:
    """``n`` wake-ups in one server reply write (a pipeline), so they arrive together."""
    pipe = raw.pipeline(transaction=False)
    for _ in range(n):
        pipe.publish(channel, WAKE_READY)
    assert pipe.execute() == [1] * n  # the waiter's subscription received each
    time.sleep(0.05)  # in the waiter's socket buffer before it reads


def test_one_wait_takes_a_burst_of_wake_ups(prefix: str, raw: redis.Redis) -> None:
    b = RedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix))
    try:
        assert b.wait_for_work(1.0)  # the first call subscribes and returns at once
        assert not b.wait_for_work(0.2)
        _burst(raw, b.keys.wake)
        assert b.wait_for_work(1.0)
        assert not b.wait_for_work(0.2)  # the rest of the burst was taken with the first
    finally:
        b.close()


def test_an_async_wait_takes_a_burst_without_reading_an_empty_socket(
    prefix: str, raw: redis.Redis
) -> None:
    async def scenario() -> None:
        b = AsyncRedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix))
        try:
            assert await b.wait_for_work(1.0)
            assert not await b.wait_for_work(0.2)  # reads the subscription's confirmation
            (wake,) = b._wakes.values()
            assert unread.state(wake.connection) == "clean"  # hiredis + asyncio stream
            assert not unread.may_hold_more(wake)
            _burst(raw, b.keys.wake)
            await asyncio.sleep(0.05)  # the event loop reads the socket into the stream
            assert unread.may_hold_more(wake)  # received, not parsed: "unknown"
            assert await b.wait_for_work(1.0)
            assert not unread.may_hold_more(wake)  # the whole burst was parsed
            assert not await b.wait_for_work(0.2)
        finally:
            await b.close()

    asyncio.run(scenario())


def test_unread_state_of_a_connection_the_server_closed(raw: redis.Redis) -> None:
    async def scenario() -> tuple[str, str]:
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        conn = client.connection_pool.make_connection()
        try:
            await conn.connect()
            await conn.send_command("CLIENT", "ID")
            client_id = await conn.read_response()
            before = unread.state(conn)
            raw.execute_command("CLIENT", "KILL", "ID", client_id)
            await asyncio.sleep(0.2)  # the end of file reaches the stream
            return before, unread.state(conn)
        finally:
            await conn.disconnect()
            await client.aclose()

    assert asyncio.run(scenario()) == ("clean", "closed")
