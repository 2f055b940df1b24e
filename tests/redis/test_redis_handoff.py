"""Redis hand-offs: a waiting worker's free slots are offered by its short claim, and a script
that makes jobs ready claims them for it and hands them over with the wake-up (no claim round
trip). Against a real server; the engine-level behaviour (every job runs once) is in the
contract suite."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import redis
from dataqueue.backends.redis.backend_sync import RedisBackend
from dataqueue.backends.types import KEEP, JobStatus
from dataqueue.options import normalize_job

LEASE = timedelta(seconds=60)
OFFER = timedelta(seconds=30)


def _add(b: RedisBackend, n: int = 1, **options: Any) -> list[int]:
    jobs = [normalize_job({"job_type": "t", **options}) for _ in range(n)]
    return [int(r.id) for r in b.add_jobs(jobs)]


def _claim(b: RedisBackend, worker: str, limit: int, **options: Any) -> list[Any]:
    return b.claim_jobs(worker, limit, lease=LEASE, offer=OFFER, **options)


def _offer(b: RedisBackend, raw: redis.Redis, worker: str) -> str | None:
    v = raw.hget(f"{b.keys.base}offers", worker)
    return None if v is None else str(v)


def _wake_messages(b: RedisBackend, raw: redis.Redis, run: Any) -> list[Any]:
    """The plain wake-ups published while ``run()`` runs."""
    sub = raw.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(b.keys.wake)
    try:
        time.sleep(0.05)
        while sub.get_message(timeout=0.05):
            pass
        run()
        out = []
        while (m := sub.get_message(timeout=0.2)) is not None:
            out.append(m["data"])
        return out
    finally:
        sub.close()


def test_a_new_job_is_handed_to_the_waiting_worker_with_its_wake_up(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    assert backend.wait_for_work(0, "w") is True  # subscribes to wake-ups and hand-offs
    assert _claim(backend, "w", 4) == []
    assert (_offer(backend, raw, "w") or "").startswith("4|")
    ids: list[int] = []
    assert _wake_messages(backend, raw, lambda: ids.extend(_add(backend))) == []
    job = backend.get_job(ids[0])
    assert job is not None
    # claimed for w in the script that added it
    assert (job.status, job.locked_by, job.attempts) == (JobStatus.PROCESSING, "w", 1)
    assert job.started_at is not None
    assert backend.wait_for_work(5, "w") is True
    got = _claim(backend, "w", 4)
    assert [(j.id, j.lock_version, j.attempts) for j in got] == [(ids[0], job.lock_version, 1)]
    assert (_offer(backend, raw, "w") or "").startswith("3|")  # one slot taken
    events = [e.event_type.value for e in backend.get_job_events(ids[0])]
    assert events == ["added", "processing"]
    # The worker's next claim asks the store, and does not get the job a second time.
    assert _claim(backend, "w", 4) == []
    assert backend.complete_jobs([(ids[0], "w", job.lock_version, KEEP)]) == [True]


def test_only_what_the_offer_allows_is_handed(backend: RedisBackend, raw: redis.Redis) -> None:
    backend.wait_for_work(0, "w")
    assert _claim(backend, "w", 2, job_types=["t"]) == []
    other = _add(backend, job_type="u")  # a type the worker does not handle
    assert backend.get_job(other[0]).status == JobStatus.PENDING  # type: ignore[union-attr]
    # Three jobs for two slots: two are handed, the third stays pending and the queue is
    # woken (the offer filled: more may be ready than it could take).
    ids: list[int] = []
    raw.set(backend.keys.idle, "1")
    woke = _wake_messages(backend, raw, lambda: ids.extend(_add(backend, 3)))
    assert len(woke) == 1
    statuses = [backend.get_job(i).status for i in ids]  # type: ignore[union-attr]
    assert statuses == [JobStatus.PROCESSING, JobStatus.PROCESSING, JobStatus.PENDING]
    assert (_offer(backend, raw, "w") or "").startswith("0|")
    assert backend.wait_for_work(5, "w") is True
    got = _claim(backend, "w", 2, job_types=["t"])
    assert [j.id for j in got] == ids[:2]
    # A completion frees its slot for the offer: the next job made ready is handed.
    assert backend.complete_jobs([(got[0].id, "w", got[0].lock_version, KEEP)]) == [True]
    assert (_offer(backend, raw, "w") or "").startswith("1|")
    assert backend.get_job(ids[2]).status == JobStatus.PENDING  # type: ignore[union-attr]
    late = _add(backend, priority=5)
    job = backend.get_job(late[0])
    assert job is not None and (job.status, job.locked_by) == (JobStatus.PROCESSING, "w")
    # The job left over is the worker's next claim's (the filled offer woke it).
    assert backend.wait_for_work(5, "w") is True
    assert [j.id for j in _claim(backend, "w", 2, job_types=["t"])] == [late[0], ids[2]]


def test_a_group_at_its_cap_is_not_handed_more(backend: RedisBackend, raw: redis.Redis) -> None:
    backend.wait_for_work(0, "w")
    first = _add(backend, group={"id": "g"})
    assert [j.id for j in _claim(backend, "w", 3, group_concurrency=1)] == first
    second = _add(backend, group={"id": "g"})
    assert backend.get_job(second[0]).status == JobStatus.PENDING  # type: ignore[union-attr]
    free = _add(backend)
    assert backend.get_job(free[0]).status == JobStatus.PROCESSING  # type: ignore[union-attr]


def test_nothing_is_handed_to_a_worker_nobody_listens_for(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    # An offer whose worker has no subscription (its process died, taking its connection).
    assert _claim(backend, "gone", 4) == []
    assert _offer(backend, raw, "gone") is not None
    ids = _add(backend)
    assert backend.get_job(ids[0]).status == JobStatus.PENDING  # type: ignore[union-attr]
    assert _offer(backend, raw, "gone") is None


def test_a_hand_off_whose_message_was_not_read_comes_with_the_next_claim(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    backend.wait_for_work(0, "w")
    assert _claim(backend, "w", 4) == []
    ids = _add(backend)
    # The claim runs before the waiter read the message: the hand list brings the job.
    got = _claim(backend, "w", 4)
    assert [j.id for j in got] == ids
    # The message, read now, does not give it again.
    assert backend.wait_for_work(5, "w") is True
    assert _claim(backend, "w", 4) == []


def test_a_stopping_worker_gives_back_what_it_did_not_start(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    backend.wait_for_work(0, "w")
    assert _claim(backend, "w", 4) == []
    started = _add(backend)
    assert backend.wait_for_work(5, "w") is True
    assert [j.id for j in _claim(backend, "w", 4)] == started
    kept = _add(backend, max_attempts=1)
    assert backend.wait_for_work(5, "w") is True  # received, never claimed
    unread = _add(backend)  # handed, its message never read
    backend.end_claims("w")
    assert _offer(backend, raw, "w") is None
    run = backend.get_job(started[0])
    assert run is not None and run.status == JobStatus.PROCESSING  # it runs: left alone
    for job_id in kept + unread:
        job = backend.get_job(job_id)
        assert job is not None
        # pending again, with the attempt and the start its claim recorded taken back
        assert (job.status, job.attempts, job.started_at) == (JobStatus.PENDING, 0, None)
    # The job with one attempt still gets its run.
    again = backend.claim_jobs("x", 10, lease=LEASE)
    assert sorted(j.id for j in again) == sorted(kept + unread)
    assert all(j.attempts == 1 for j in again)


def test_each_waiter_receives_only_its_own_worker_hand_offs(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    results: dict[str, list[int]] = {}

    def worker(name: str, job_type: str, ready: threading.Barrier) -> None:
        backend.wait_for_work(0, name)
        assert _claim(backend, name, 2, job_types=[job_type]) == []
        ready.wait()
        backend.wait_for_work(5, name)
        results[name] = [j.id for j in _claim(backend, name, 2, job_types=[job_type])]

    ready = threading.Barrier(3)
    threads = [
        threading.Thread(target=worker, args=("a", "ta", ready)),
        threading.Thread(target=worker, args=("b", "tb", ready)),
    ]
    for t in threads:
        t.start()
    ready.wait()
    a = _add(backend, job_type="ta")
    b = _add(backend, job_type="tb")
    for t in threads:
        t.join(10)
    assert results == {"a": a, "b": b}


def test_a_processor_runs_each_job_once_and_withdraws_its_offer_on_stop(
    prefix: str, raw: redis.Redis
) -> None:
    import asyncio

    from _redis_fixtures import REDIS_URL
    from dataqueue import init_async_job_queue

    runs: list[int] = []

    async def handler(payload: dict[str, Any], ctx: Any) -> None:
        runs.append(payload["n"])

    async def main() -> list[Any]:
        q = init_async_job_queue(REDIS_URL, key_prefix=prefix)
        p = q.create_processor({"t": handler}, concurrency=3, poll_interval=30)
        task = asyncio.create_task(p.run_async())
        ids = []
        for n in range(40):  # one by one, each while the worker waits (poll_interval is long)
            ids.append(await q.add_job("t", {"n": n}))
            await asyncio.sleep(0.01)
        for _ in range(200):
            if len(runs) == 40:
                break
            await asyncio.sleep(0.05)
        p.stop()
        await task
        jobs = [await q.get_job(i) for i in ids]
        events = [await q.get_job_events(i) for i in ids]
        await q.close()
        return [jobs, events]

    jobs, events = asyncio.run(main())
    assert sorted(runs) == list(range(40))
    assert all(j.status == JobStatus.COMPLETED and j.attempts == 1 for j in jobs)
    assert all(
        [e.event_type.value for e in ev] == ["added", "processing", "completed"] for ev in events
    )
    assert raw.hlen(f"{_base(prefix)}offers") == 0


def _base(prefix: str) -> str:
    from dataqueue.backends.redis.keys import base_for_prefix

    return base_for_prefix(prefix)


def test_a_killed_worker_is_handed_nothing_and_costs_no_attempt(
    prefix: str, raw: redis.Redis, tmp_path: Any
) -> None:
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import dataqueue
    from _redis_fixtures import REDIS_URL
    from dataqueue import init_job_queue

    script = tmp_path / "worker.py"
    script.write_text(
        "import asyncio\n"
        "from dataqueue import init_async_job_queue\n"
        "async def handler(payload, ctx):\n"
        "    pass\n"
        "async def main():\n"
        f"    q = init_async_job_queue({REDIS_URL!r}, key_prefix={prefix!r})\n"
        "    await q.create_processor({'t': handler}, poll_interval=30).run_async()\n"
        "asyncio.run(main())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(dataqueue.__file__).parent.parent))
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    offers = f"{_base(prefix)}offers"
    try:
        deadline = time.monotonic() + 30
        while raw.hlen(offers) == 0:  # idle: its short claim offered its slots
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert raw.hlen(offers) == 1  # the offer outlives the process...
    q = init_job_queue(REDIS_URL, key_prefix=prefix)
    try:
        job_id = q.add_job("t", {}, max_attempts=1)
        # ...but nobody listens on its channel: the job is not handed to the dead worker
        job = q.get_job(job_id)
        assert job is not None and (job.status, job.attempts) == (JobStatus.PENDING, 0)
        assert raw.hlen(offers) == 0
        ran: list[int] = []
        assert q.create_processor({"t": lambda p, c: ran.append(1)}).start() == 1
        done = q.get_job(job_id)
        assert done is not None and (done.status, done.attempts) == (JobStatus.COMPLETED, 1)
    finally:
        q.close()


def test_one_job_goes_to_one_of_several_waiting_workers(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    got: dict[str, list[int]] = {}
    ready = threading.Barrier(4)

    def worker(name: str) -> None:
        backend.wait_for_work(0, name)
        assert _claim(backend, name, 2) == []
        ready.wait()
        if backend.wait_for_work(2, name):
            got[name] = [j.id for j in _claim(backend, name, 2)]

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    ready.wait()
    ids = _add(backend)
    for t in threads:
        t.join(10)
    assert [i for v in got.values() for i in v] == ids  # handed once, to one worker
    offers = {k: str(v).split("|")[0] for k, v in raw.hgetall(f"{backend.keys.base}offers").items()}
    assert sorted(offers.values()) == ["1", "2", "2"]
