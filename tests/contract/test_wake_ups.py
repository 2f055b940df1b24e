"""``wait_for_work``: an idle worker wakes when a job may have become claimable — on enqueue,
when a delayed job comes due — on every backend and twin (PostgreSQL LISTEN/NOTIFY plus the
next due time, Redis pub/sub plus the delayed set), and a due job wakes it once, not forever.

A worker waits from one task (one thread in the blocking twin), and Redis keys its
subscription by that waiter, so each test waits through :class:`Waiter`: on the async twin
every wait runs in one long-lived task instead of a new task per bridged call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _bridge import LoopThread, unwrap
from dataqueue.options import normalize_job

LEASE = timedelta(seconds=30)
#: Wake-ups a test tolerates before the one it waits for (the first call subscribes; Redis
#: tells idle workers to re-arm on a new earliest delayed job).
EARLY_WAKE_UPS = 3


class Waiter:
    """``waiter(timeout)`` is ``backend.wait_for_work(timeout)`` from one waiter."""

    def __init__(self, backend: Any, twin: str, loop_thread: LoopThread) -> None:
        self._backend = backend
        self._loop: asyncio.AbstractEventLoop | None = None
        if twin == "async":
            self._loop = loop_thread.loop
            self._requests: asyncio.Queue[Any] = loop_thread.call(asyncio.Queue)
            self._task = loop_thread.call(self._loop.create_task, self._serve(unwrap(backend)))

    async def _serve(self, backend: Any) -> None:
        while True:
            timeout, reply = await self._requests.get()
            if reply is None:
                return
            try:
                reply.set_result(await backend.wait_for_work(timeout))
            except Exception as exc:
                reply.set_exception(exc)

    def __call__(self, timeout: float) -> bool:
        if self._loop is None:
            return bool(self._backend.wait_for_work(timeout))
        reply: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self._loop.call_soon_threadsafe(self._requests.put_nowait, (timeout, reply))
        return reply.result(timeout + 30)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._requests.put_nowait, (0, None))

    def woken_after(self, happened: Callable[[], bool], limit: float = 3) -> float:
        """Wait until woken once ``happened()`` is true; return the seconds it took."""
        started = time.monotonic()
        for _ in range(EARLY_WAKE_UPS + 1):
            assert self(5) is True, "not woken"
            if happened():
                elapsed = time.monotonic() - started
                assert elapsed < limit
                return elapsed
        raise AssertionError(f"more than {EARLY_WAKE_UPS} wake-ups before the awaited one")


@pytest.fixture
def waiter(twin: str, loop_thread: LoopThread) -> Iterator[Callable[[Any], Waiter]]:
    made: list[Waiter] = []

    def make(backend: Any) -> Waiter:
        made.append(Waiter(backend, twin, loop_thread))
        made[-1](0)  # subscribe
        return made[-1]

    yield make
    for w in made:
        w.close()


def _add(backend: Any, **options: Any) -> int:
    return int(backend.add_jobs([normalize_job({"job_type": "t", **options})])[0].id)


def test_wakes_on_enqueue(q: Any, queue_factory: Any, waiter: Any) -> None:
    idle = waiter(q._backend)
    producer = queue_factory()._backend
    added = threading.Event()
    timer = threading.Timer(0.2, lambda: (added.set(), _add(producer)))
    timer.start()
    try:
        idle.woken_after(added.is_set)
    finally:
        timer.join()
    assert len(q._backend.claim_jobs("w", 10, lease=LEASE)) == 1
    assert idle(0.2) is False  # nothing new: it times out


def test_wakes_when_a_delayed_job_comes_due(q: Any, queue_factory: Any, waiter: Any) -> None:
    idle = waiter(q._backend)
    producer = queue_factory()._backend
    # Far enough ahead that the add (a new queue's first connection) ends well before it.
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    _add(producer, run_at=due)
    # Woken at the due time, not at the 5 s timeout.
    idle.woken_after(lambda: datetime.now(UTC) >= due - timedelta(milliseconds=20))
    assert len(q._backend.claim_jobs("w", 10, lease=LEASE)) == 1


def test_a_due_job_wakes_a_busy_worker_once_not_forever(q: Any, waiter: Any) -> None:
    """A worker at capacity does not claim: the same due job must not look new on every wait."""
    busy = waiter(q._backend)
    _add(q._backend, run_at=datetime.now(UTC) + timedelta(milliseconds=50))
    time.sleep(0.1)
    for _ in range(EARLY_WAKE_UPS + 1):
        if not busy(0.3):  # quiet again: the job's wake-ups are over
            break
    else:
        raise AssertionError("the due job keeps waking the worker")
    assert len(q._backend.claim_jobs("w", 10, lease=LEASE)) == 1


def _wake_all(idle: list[Waiter], add: Callable[[], Any], limit: float) -> list[float]:
    """Every waiter of ``idle`` waits in its own thread; one ``add`` once they all wait.
    Returns how long each took to wake (a waiter's error fails the test here)."""
    added = threading.Event()
    woke: list[float] = []
    errors: list[BaseException] = []

    def wait(w: Waiter) -> None:
        try:
            woke.append(w.woken_after(added.is_set, limit=limit))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=wait, args=(w,)) for w in idle]
    for t in threads:
        t.start()
    time.sleep(0.3)
    added.set()
    add()
    for t in threads:
        t.join(timeout=10)
    assert errors == []
    return woke


def test_every_idle_worker_wakes_whatever_types_it_handles(
    q: Any, queue_factory: Any, waiter: Any
) -> None:
    idle = [waiter(q._backend)] + [waiter(queue_factory()._backend) for _ in range(2)]
    woke = _wake_all(idle, lambda: _add(q._backend, job_type="only-one-worker-handles-this"), 5)
    assert len(woke) == 3


def test_two_waiters_of_one_backend_both_wake(q: Any, waiter: Any) -> None:
    """Two processors made from one queue wait at once: each waits on its own subscription,
    so one enqueue wakes both (a shared PostgreSQL LISTEN connection handed its one
    notification to one of them; a shared Redis pub/sub connection was read by both at once
    and failed)."""
    woke = _wake_all([waiter(q._backend), waiter(q._backend)], lambda: _add(q._backend), 2)
    assert len(woke) == 2


def test_wake_ups_that_piled_up_are_taken_by_one_wait(
    q: Any, queue_factory: Any, waiter: Any
) -> None:
    """Enqueues while the worker was not waiting wake it once; its next wait, with nothing
    new, blocks until its timeout instead of returning for each enqueue."""
    idle = waiter(q._backend)
    assert idle(0.2) is False  # quiet before (on Redis this reads the subscribe reply)
    producer = queue_factory()._backend
    for _ in range(3):
        _add(producer)
    time.sleep(0.1)  # every notification has reached the waiter's connection
    assert idle(5) is True
    started = time.monotonic()
    assert idle(0.3) is False
    assert time.monotonic() - started >= 0.25
    assert len(q._backend.claim_jobs("w", 10, lease=LEASE)) == 3
