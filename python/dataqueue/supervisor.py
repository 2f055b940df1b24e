"""The supervisor: periodic maintenance of a queue (``queue.create_supervisor(...)``).

One run does, in order and each task isolated (an error goes to ``on_error`` and the ``error``
hook, the other tasks still run): reclaim jobs whose lease expired or that ran too long (jobs
with no attempts left fail with ``worker_lost``), delete old completed jobs, delete old job
events, expire timed-out wait tokens. ``AsyncSupervisor`` serves an ``AsyncJobQueue``;
``Supervisor`` (blocking, its background loop on a thread) serves a ``JobQueue``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dataqueue import maintenance_async, maintenance_sync
from dataqueue.backends.base_async import AsyncBackend
from dataqueue.errors import ConfigurationError, DataQueueError
from dataqueue.hooks import emitter_of
from dataqueue.lifecycle import (
    DEFAULT_CLEANUP_BATCH_SIZE,
    DEFAULT_CLEANUP_DAYS,
    DEFAULT_STOP_TIMEOUT,
    DEFAULT_STUCK_MINUTES,
    DEFAULT_SUPERVISOR_INTERVAL,
)
from dataqueue.lifecycle import MAX_DAYS_TO_KEEP as MAX_DAYS
from dataqueue.records import JobStatus
from dataqueue.worker.execution import with_retries, with_retries_blocking

__all__ = [
    "AsyncSupervisor",
    "Supervisor",
    "SupervisorOptions",
    "SupervisorResult",
    "create_supervisor",
]

log: logging.Logger = logging.getLogger("dataqueue.supervisor")


@dataclass(frozen=True, slots=True)
class SupervisorResult:
    """What one run did (0 for a task that was disabled or failed)."""

    reclaimed_jobs: int = 0
    cleaned_up_jobs: int = 0
    cleaned_up_events: int = 0
    expired_tokens: int = 0


@dataclass(frozen=True, slots=True)
class SupervisorOptions:
    interval: float = DEFAULT_SUPERVISOR_INTERVAL
    stuck_jobs_timeout_minutes: float = DEFAULT_STUCK_MINUTES
    cleanup_jobs_days_to_keep: int = DEFAULT_CLEANUP_DAYS
    cleanup_events_days_to_keep: int = DEFAULT_CLEANUP_DAYS
    cleanup_batch_size: int = DEFAULT_CLEANUP_BATCH_SIZE
    reclaim_stuck_jobs: bool = True
    expire_timed_out_tokens: bool = True
    on_error: Callable[[BaseException], Any] | None = None
    verbose: bool = False


def _number(value: Any, name: str, *, positive: bool) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        kind = "positive" if positive else "non-negative"
        raise ConfigurationError(
            f'Supervisor option "{name}" must be a {kind} number, got {value!r}'
        )
    return value


def parse_supervisor_options(**options: Any) -> SupervisorOptions:
    """Validate ``create_supervisor``'s options; raise ``ConfigurationError``."""
    known = set(SupervisorOptions.__dataclass_fields__)
    unknown = set(options) - known
    if unknown:
        raise ConfigurationError(f"unknown supervisor option(s): {sorted(unknown)}")
    opts = SupervisorOptions(**options)
    _number(opts.interval, "interval", positive=True)
    _number(opts.stuck_jobs_timeout_minutes, "stuck_jobs_timeout_minutes", positive=True)
    for name in ("cleanup_jobs_days_to_keep", "cleanup_events_days_to_keep"):
        value = getattr(opts, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
            raise ConfigurationError(
                f'Supervisor option "{name}" must be an int from 0 (disables) to {MAX_DAYS:,}, '
                f"got {value!r}"
            )
    size = opts.cleanup_batch_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigurationError(
            f'Supervisor option "cleanup_batch_size" must be a positive integer, got {size!r}'
        )
    if opts.on_error is not None and not callable(opts.on_error):
        raise ConfigurationError(f"on_error must be callable, got {opts.on_error!r}")
    return opts


async def _awaited(call: Callable[[], Any]) -> Any:
    value = call()
    if inspect.isawaitable(value):
        value = await value
    return value


class _Tasks:
    """The four maintenance tasks over any backend, sync (``call`` returns values) or async."""

    def __init__(self, backend: Any, hooks: Any, opts: SupervisorOptions) -> None:
        self.backend = backend
        self.hooks = hooks
        self.opts = opts

    def plan(self) -> list[tuple[str, Callable[[], Any]]]:
        o, b = self.opts, self.backend
        tasks: list[tuple[str, Callable[[], Any]]] = []
        m = maintenance_async if isinstance(b, AsyncBackend) else maintenance_sync
        if o.reclaim_stuck_jobs:
            tasks.append(
                ("reclaimed_jobs", lambda: m.reclaim_stuck_jobs(b, o.stuck_jobs_timeout_minutes))
            )
        if o.cleanup_jobs_days_to_keep > 0:
            tasks.append(
                (
                    "cleaned_up_jobs",
                    lambda: m.cleanup_old_jobs(
                        b,
                        o.cleanup_jobs_days_to_keep,
                        (JobStatus.COMPLETED,),
                        o.cleanup_batch_size,
                    ),
                )
            )
        if o.cleanup_events_days_to_keep > 0:
            tasks.append(
                (
                    "cleaned_up_events",
                    lambda: m.cleanup_old_job_events(
                        b, o.cleanup_events_days_to_keep, o.cleanup_batch_size
                    ),
                )
            )
        if o.expire_timed_out_tokens:
            tasks.append(("expired_tokens", b.expire_timed_out_tokens))
        return tasks

    def failed(self, name: str, exc: BaseException) -> None:
        if not isinstance(exc, Exception):
            exc = DataQueueError(repr(exc))
        log.error("supervisor task %s failed: %s", name, exc, exc_info=self.opts.verbose)
        self.hooks.emit("error", exc)
        if self.opts.on_error is not None:
            try:
                result = self.opts.on_error(exc)
                if inspect.iscoroutine(result):
                    result.close()
                    log.warning("supervisor on_error must be a plain function")
            except Exception as inner:
                log.exception("supervisor on_error raised", exc_info=inner)

    def done(self, counts: dict[str, int]) -> SupervisorResult:
        result = SupervisorResult(**counts)
        if self.opts.verbose:
            log.info("supervisor run: %s", result)
        return result


class _SupervisorBase:
    """What both supervisor flavours share: the tasks, the options and the running flag."""

    def __init__(self, backend: Any, hooks: Any, options: SupervisorOptions) -> None:
        self._tasks = _Tasks(backend, hooks, options)
        self._opts = options
        self._running = False

    def start_in_background(self) -> None:
        """Run now, then again ``interval`` seconds after each run; no-op if running."""
        if self._running:
            return
        self._running = True
        self._launch()

    def _launch(self) -> None:
        """Start the background loop (it clears ``_running`` when it ends)."""
        raise NotImplementedError

    def is_running(self) -> bool:
        """Whether the background loop is running."""
        return self._running


class AsyncSupervisor(_SupervisorBase):
    """Maintenance for an ``AsyncJobQueue`` on the running event loop."""

    def __init__(self, backend: AsyncBackend, hooks: Any, options: SupervisorOptions) -> None:
        super().__init__(backend, hooks, options)
        self._task: asyncio.Task[None] | None = None
        self._current: asyncio.Task[SupervisorResult] | None = None
        self._stop: asyncio.Event | None = None

    async def start(self) -> SupervisorResult:
        """Run every enabled task once and return the counts."""
        counts: dict[str, int] = {}
        for name, call in self._tasks.plan():
            try:
                # Transient errors (a dropped pooled connection, a restarting server) are
                # retried like the worker's writes: every task is safe to repeat.
                value = await with_retries(_awaited, call)
                counts[name] = int(value)
            except Exception as exc:
                self._tasks.failed(name, exc)
        return self._tasks.done(counts)

    def _launch(self) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        assert self._stop is not None
        try:
            while self._running:
                self._current = asyncio.get_running_loop().create_task(self.start())
                await asyncio.gather(self._current, return_exceptions=True)
                self._current = None
                if not self._running:
                    break
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self._opts.interval)
        finally:
            self._running = False

    def stop(self) -> None:
        """Stop the background loop (a run in progress finishes)."""
        self._running = False
        if self._stop is not None:
            self._stop.set()

    async def stop_and_drain(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop and wait up to ``timeout`` s for a run in progress."""
        self.stop()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=timeout)


class Supervisor(_SupervisorBase):
    """Maintenance for a blocking ``JobQueue``; the background loop runs on a daemon thread."""

    def __init__(self, backend: Any, hooks: Any, options: SupervisorOptions) -> None:
        super().__init__(backend, hooks, options)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> SupervisorResult:
        """Run every enabled task once and return the counts."""
        counts: dict[str, int] = {}
        with self._lock:  # one run at a time (the background thread may be running one)
            for name, call in self._tasks.plan():
                try:
                    counts[name] = int(with_retries_blocking(call))
                except Exception as exc:
                    self._tasks.failed(name, exc)
        return self._tasks.done(counts)

    def _launch(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="dataqueue-supervisor", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            while self._running:
                self.start()
                if self._stop.wait(self._opts.interval):
                    break
        finally:
            self._running = False

    def stop(self) -> None:
        """Stop the background loop (a run in progress finishes)."""
        self._running = False
        self._stop.set()

    def stop_and_drain(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop and wait up to ``timeout`` s for a run in progress."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)


def create_supervisor(queue: Any, **options: Any) -> Supervisor | AsyncSupervisor:
    """Build the supervisor for ``queue`` (``AsyncSupervisor`` for an ``AsyncJobQueue``).

    Options: ``interval`` 60 s, ``stuck_jobs_timeout_minutes`` 10, ``cleanup_jobs_days_to_keep``
    30 and ``cleanup_events_days_to_keep`` 30 (0 disables), ``cleanup_batch_size`` 1000,
    ``reclaim_stuck_jobs`` True, ``expire_timed_out_tokens`` True, ``on_error``, ``verbose``.
    """
    opts = parse_supervisor_options(**options)
    backend = getattr(queue, "_backend", None)
    if backend is None:
        raise ConfigurationError("create_supervisor needs a queue from init_job_queue")
    hooks = emitter_of(queue)
    if isinstance(backend, AsyncBackend):
        return AsyncSupervisor(backend, hooks, opts)
    return Supervisor(backend, hooks, opts)
