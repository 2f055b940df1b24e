"""Waiting for a job's result: ``wait_for_job`` and ``handle.result()``.

A waiter reads the job, and while it has not finished sleeps until the backend announces that
jobs finished (PostgreSQL NOTIFY on the queue's ``….done`` channel, Redis pub/sub on
``<prefix>…done``; one message per completion batch, not per job) — then reads it again. One
subscription per queue serves every waiter: a reader (a daemon thread for ``JobQueue``, a task
for ``AsyncJobQueue``) bumps a generation counter on each message and wakes the waiters. A
waiter also re-reads every ``RECHECK_SECONDS`` in case a notification was lost (a dropped
connection, a job finished by a path that does not announce, e.g. reclaim of a dead worker's
last attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Final

from dataqueue.errors import InvalidJobError, JobCancelledError, JobFailedError
from dataqueue.records import JobRecord, JobStatus

__all__ = [
    "RECHECK_SECONDS",
    "AsyncFinishWatcher",
    "FinishWatcher",
    "in_thread",
    "outcome",
    "wait_seconds",
]

log: logging.Logger = logging.getLogger("dataqueue.results")

#: Longest a waiter sleeps without re-reading its job (a safety net, not the wake-up path).
RECHECK_SECONDS: Final = 5.0
#: A reader with no waiter for this long closes its subscription and ends.
_IDLE_SECONDS: Final = 10.0
#: Slice of one blocking read of the subscription (how fast a reader notices it is idle).
_SLICE: Final = 1.0


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking call in a thread (the blocking queue's ``*_async`` methods)."""
    return await asyncio.to_thread(fn, *args)


def wait_seconds(timeout: float | timedelta | None) -> float | None:
    """``timeout`` as seconds (None = wait for ever); rejects negatives and non-numbers."""
    if timeout is None:
        return None
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or math.isnan(seconds)
        or seconds < 0
    ):
        raise InvalidJobError(f"timeout must be a non-negative number of seconds, got {timeout!r}")
    return float(seconds)


def outcome(job: JobRecord) -> tuple[bool, Any]:
    """``(True, output)`` for a completed job, ``(False, None)`` while it may still run;
    raises ``JobFailedError`` (failed with no retry scheduled) or ``JobCancelledError``."""
    status = job.status
    if status is JobStatus.COMPLETED:
        return True, job.output
    if status is JobStatus.CANCELLED:
        raise JobCancelledError(job)
    if status is JobStatus.FAILED and job.next_attempt_at is None:
        raise JobFailedError(job)
    return False, None


class FinishWatcher:
    """The blocking queue's shared subscription to "jobs finished" (see the module doc)."""

    def __init__(self, open_listener: Callable[[], Any]) -> None:
        self._open = open_listener
        self._cond = threading.Condition()
        self._generation = 0
        self._waiters = 0
        self._listener: Any = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._unsupported = False

    def generation(self) -> int:
        """The current generation, after making sure the subscription is open (so anything
        finishing after this call is announced)."""
        with self._cond:
            if self._listener is None and not self._unsupported and not self._closed:
                listener = self._open()
                if listener is None:
                    self._unsupported = True
                else:
                    self._listener = listener
            if self._listener is not None and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(
                    target=self._run, name="dataqueue-results", daemon=True
                )
                self._thread.start()
            return self._generation

    def wait(self, generation: int, timeout: float) -> None:
        """Return when the generation moved past ``generation`` or after ``timeout`` s."""
        with self._cond:
            self._waiters += 1
            try:
                self._cond.wait_for(lambda: self._generation != generation, max(0.0, timeout))
            finally:
                self._waiters -= 1

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._cond:
                listener = self._listener
                if self._waiters:
                    idle_since = time.monotonic()
                if (
                    listener is None
                    or self._closed
                    or time.monotonic() - idle_since > _IDLE_SECONDS
                ):
                    self._listener = None
                    break
            try:
                got = listener.wait(_SLICE)
            except Exception as exc:  # a dropped subscription: waiters fall back to re-reads
                log.warning("results subscription failed: %s", exc)
                with self._cond:
                    self._listener = None
                    self._generation += 1  # let waiters re-read now
                    self._cond.notify_all()
                with contextlib.suppress(Exception):
                    listener.close()
                return
            if got:
                with self._cond:
                    self._generation += 1
                    self._cond.notify_all()
        with contextlib.suppress(Exception):
            listener.close() if listener is not None else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_SLICE + 1.0)


class AsyncFinishWatcher:
    """The asyncio queue's shared subscription to "jobs finished" (see the module doc); bound
    to the event loop it is first used on (a new loop gets a new subscription)."""

    def __init__(self, open_listener: Callable[[], Awaitable[Any]]) -> None:
        self._open = open_listener
        self._generation = 0
        self._waiters = 0
        self._listener: Any = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._closed = False
        self._unsupported = False

    async def generation(self) -> int:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new event loop (e.g. another asyncio.run): the old subscription belongs to the
            # old loop and cannot be used here.
            self._loop, self._listener, self._task = loop, None, None
            self._changed, self._lock = asyncio.Event(), asyncio.Lock()
        assert self._lock is not None
        async with self._lock:
            if self._listener is None and not self._unsupported and not self._closed:
                listener = await self._open()
                if listener is None:
                    self._unsupported = True
                else:
                    self._listener = listener
            if self._listener is not None and (self._task is None or self._task.done()):
                self._task = loop.create_task(self._run())
        return self._generation

    async def wait(self, generation: int, timeout: float) -> None:
        self._waiters += 1
        try:
            end = time.monotonic() + max(0.0, timeout)
            while self._generation == generation and (left := end - time.monotonic()) > 0:
                changed = self._changed
                assert changed is not None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), left)
        finally:
            self._waiters -= 1

    def _bump(self) -> None:
        self._generation += 1
        changed = self._changed
        if changed is not None:
            changed.set()
            self._changed = asyncio.Event()

    async def _run(self) -> None:
        listener = self._listener
        idle_since = time.monotonic()
        try:
            while listener is not None and listener is self._listener and not self._closed:
                if self._waiters:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > _IDLE_SECONDS:
                    break
                try:
                    got = await listener.wait(_SLICE)
                except Exception as exc:
                    log.warning("results subscription failed: %s", exc)
                    self._bump()
                    break
                if got:
                    self._bump()
        finally:
            if listener is self._listener:
                self._listener = None
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()

    async def close(self) -> None:
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            try:
                same_loop = task.get_loop() is asyncio.get_running_loop()
            except RuntimeError:
                same_loop = False
            if same_loop:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
