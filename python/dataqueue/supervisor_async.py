"""A supervisor's runs and background loop, written once in ``supervisor_async.py`` (the
asyncio twin: its loop is a task on the running event loop); the blocking twin (its loop on a
daemon thread) is generated from it into ``supervisor_sync.py`` by ``tools/gen_sync.py``.
Options, result and failure reports: ``dataqueue.supervisor_plan``.
"""

from __future__ import annotations

import asyncio  # sync: import threading
from collections.abc import Awaitable, Callable
from typing import Any

from dataqueue import maintenance_async
from dataqueue.backends.base_async import AsyncBackend
from dataqueue.hooks import EventEmitter
from dataqueue.lifecycle import DEFAULT_STOP_TIMEOUT, JobStatus
from dataqueue.supervisor_plan import (
    SupervisorOptions,
    SupervisorResult,
    finish_run,
    report_failure,
    sleep_unless_set,
)
from dataqueue.worker.execution import (
    with_retries,  # sync: with_retries_blocking as with_retries,
)

__all__ = ["AsyncSupervisor"]

# What differs between the twins: the loop's primitives, and what a task call returns.
_Event = asyncio.Event  # sync: _Event = threading.Event
_Lock = asyncio.Lock  # sync: _Lock = threading.Lock
_Runner = asyncio.Task  # sync: _Runner = threading.Thread
_Call = Callable[..., Awaitable[int]]  # sync: _Call = Callable[..., int]


class AsyncSupervisor:
    """Maintenance for an ``AsyncJobQueue``; its background loop is a task on the event loop."""

    def __init__(
        self, backend: AsyncBackend, hooks: EventEmitter, options: SupervisorOptions
    ) -> None:
        self._backend = backend
        self._hooks = hooks
        self._opts = options
        self._running = False
        self._lock = _Lock()  # one run at a time (the background loop may be running one)
        self._stop = _Event()
        self._runner: _Runner[None] | None = None  # sync: self._runner: _Runner | None = None

    async def start(self) -> SupervisorResult:
        """Run every enabled task once and return the counts."""
        o, b, m = self._opts, self._backend, maintenance_async
        async with self._lock:
            reclaimed = (
                await self._task(
                    "reclaimed_jobs", m.reclaim_stuck_jobs, b, o.stuck_jobs_timeout_minutes
                )
                if o.reclaim_stuck_jobs
                else 0
            )
            jobs = (
                await self._task(
                    "cleaned_up_jobs",
                    m.cleanup_old_jobs,
                    b,
                    o.cleanup_jobs_days_to_keep,
                    (JobStatus.COMPLETED,),
                    o.cleanup_batch_size,
                )
                if o.cleanup_jobs_days_to_keep > 0
                else 0
            )
            events = (
                await self._task(
                    "cleaned_up_events",
                    m.cleanup_old_job_events,
                    b,
                    o.cleanup_events_days_to_keep,
                    o.cleanup_batch_size,
                )
                if o.cleanup_events_days_to_keep > 0
                else 0
            )
            tokens = (
                await self._task("expired_tokens", b.expire_timed_out_tokens)
                if o.expire_timed_out_tokens
                else 0
            )
        return finish_run(o, SupervisorResult(reclaimed, jobs, events, tokens))

    async def _task(self, name: str, call: _Call, *args: Any) -> int:
        try:
            # Transient errors (a dropped pooled connection, a restarting server) are retried
            # like the worker's writes: every task is safe to repeat.
            return int(await with_retries(call, *args))
        except Exception as exc:
            report_failure(self._opts, self._hooks, name, exc)
            return 0

    def start_in_background(self) -> None:
        """Run now, then again ``interval`` seconds after each run; no-op if running."""
        if self._running:
            return
        self._running = True
        # Each loop watches its own stop event, so an old loop still finishing a run after
        # stop() ends even when a new one has started.
        self._stop = stop = _Event()
        loop = asyncio.get_running_loop()  # sync: <remove>
        self._runner = loop.create_task(self._loop(stop))  # sync: self._runner = _Runner(
        # sync: target=self._loop, args=(stop,), name="dataqueue-supervisor", daemon=True
        # sync: )
        # sync: self._runner.start()

    async def _loop(self, stop: _Event) -> None:
        every = self._opts.interval
        try:
            while not stop.is_set():
                await self.start()
                await sleep_unless_set(stop, every)  # sync: stop.wait(every)
        finally:
            if stop is self._stop:
                self._running = False

    def is_running(self) -> bool:
        """Whether the background loop is running."""
        return self._running

    def stop(self) -> None:
        """Stop the background loop (a run in progress finishes)."""
        self._running = False
        self._stop.set()

    async def stop_and_drain(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop and wait up to ``timeout`` s for a run in progress."""
        self.stop()
        runner = self._runner
        if runner is not None:
            await asyncio.wait({runner}, timeout=timeout)  # sync: runner.join(timeout)
