"""The asyncio core of a processor: claim, run, finish, heartbeat — for one worker id.

Both :class:`~dataqueue.worker.processor.Processor` (blocking) and ``AsyncProcessor`` drive an
:class:`Engine` on an event loop. The continuous pool refills a freed slot at once: every finished
job, every completion flush and every backend wake-up (LISTEN/NOTIFY, Redis) "kicks" the claim
loop, which claims ``min(free slots, batch_size)`` jobs per statement; ``poll_interval`` is only the
fallback tick (and the cron tick). Completions are group-committed: while one
``complete_jobs`` call is in flight, finished jobs queue up and go out together in the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict

from dataqueue._typing import Unpack, check_keywords
from dataqueue.backends.types import KEEP
from dataqueue.cron import next_run_for
from dataqueue.errors import BackendError, ConfigurationError, DataQueueError, InvalidJobError
from dataqueue.lifecycle import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_SHUTDOWN_GRACE,
    WAIT_PREFIX,
)
from dataqueue.options import dump_json, positive_number
from dataqueue.records import FailureReason, JobRecord
from dataqueue.tasks import (
    DEFAULT_RETRY_POLICY,
    RETRY_POLICY_ATTR,
    ExceptionClasses,
    RetryPolicy,
    retry_policy,
)
from dataqueue.worker.context import (
    AsyncJobContext,
    JobContext,
    JobState,
    WaitSignal,
)
from dataqueue.worker.execution import is_transient, with_retries
from dataqueue.worker.forcekill import JobTimeoutError, run_force_killed
from dataqueue.worker.joblog import log, log_completed, log_started
from dataqueue.worker.outcome import COMPLETED, Outcomes
from dataqueue.worker.threads import DaemonThreadPool

if TYPE_CHECKING:
    from dataqueue.backends.base_async import AsyncBackend
    from dataqueue.hooks import EventEmitter

__all__ = ["Engine", "ProcessorKwargs", "ProcessorOptions", "parse_options"]


#: Most completions sent in one ``complete_jobs`` call.
MAX_FLUSH = 500

#: While the backend is unreachable, one WARNING line this often (seconds).
OUTAGE_LOG_EVERY = 30.0


@dataclass(frozen=True, slots=True)
class ProcessorOptions:
    """Validated processor settings (see ``create_processor``)."""

    worker_id: str
    batch_size: int
    concurrency: int
    group_concurrency: int | None
    poll_interval: float
    job_types: tuple[str, ...] | None
    on_error: Callable[[BaseException], Any] | None
    verbose: bool
    lease: timedelta
    heartbeat_interval: float
    shutdown_grace: float
    give_up_after: float | None = None
    claim_all_types: bool = False
    retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _random_worker_id() -> str:
    import secrets

    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "worker-" + "".join(secrets.choice(alphabet) for _ in range(7))


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f'Processor option "{name}" must be a positive integer, got {value!r}'
        )
    return value


def _positive_number(value: Any, name: str) -> float:
    number = positive_number(value)
    if number is None:
        raise ConfigurationError(
            f'Processor option "{name}" must be a positive number, got {value!r}'
        )
    return number


class ProcessorKwargs(TypedDict, total=False):
    """The keyword options of ``create_processor`` (their defaults: ``parse_options``)."""

    worker_id: str | None
    batch_size: int
    concurrency: int
    group_concurrency: int | None
    poll_interval: float
    job_type: str | Sequence[str] | None
    on_error: Callable[[BaseException], object] | None
    verbose: bool
    lease_seconds: float
    heartbeat_interval: float | None
    shutdown_grace: float
    give_up_after: float | None
    claim_all_types: bool
    retry_on: ExceptionClasses | None
    dont_retry_on: ExceptionClasses | None


def parse_options(**options: Unpack[ProcessorKwargs]) -> ProcessorOptions:
    """Validate ``create_processor``'s keyword options; raise ``ConfigurationError``."""
    check_keywords("create_processor", options, ProcessorKwargs)
    worker_id = options.get("worker_id")
    group_concurrency = options.get("group_concurrency")
    job_type, on_error = options.get("job_type"), options.get("on_error")
    lease_seconds = options.get("lease_seconds", DEFAULT_LEASE_SECONDS)
    heartbeat_interval = options.get("heartbeat_interval")
    give_up_after = options.get("give_up_after")
    if worker_id is None:
        worker_id = _random_worker_id()
    elif not isinstance(worker_id, str) or not worker_id:
        raise ConfigurationError(f"worker_id must be a non-empty string, got {worker_id!r}")
    if group_concurrency is not None and (
        isinstance(group_concurrency, bool)
        or not isinstance(group_concurrency, int)
        or group_concurrency < 1
    ):
        raise ConfigurationError(
            'Processor option "group_concurrency" must be a positive integer when provided.'
        )
    job_types: tuple[str, ...] | None
    if job_type is None:
        job_types = None
    elif isinstance(job_type, str):
        job_types = (job_type,)
    else:
        job_types = tuple(job_type)
        if not job_types or not all(isinstance(t, str) and t for t in job_types):
            raise ConfigurationError(
                f"job_type must be a string or a non-empty list of strings, got {job_type!r}"
            )
    if on_error is not None and not callable(on_error):
        raise ConfigurationError(f"on_error must be callable, got {on_error!r}")
    lease = _positive_number(lease_seconds, "lease_seconds")
    interval = (
        lease / 3.0
        if heartbeat_interval is None
        else _positive_number(heartbeat_interval, "heartbeat_interval")
    )
    return ProcessorOptions(
        worker_id=worker_id,
        batch_size=_positive_int(options.get("batch_size", DEFAULT_BATCH_SIZE), "batch_size"),
        concurrency=_positive_int(options.get("concurrency", DEFAULT_CONCURRENCY), "concurrency"),
        group_concurrency=group_concurrency,
        poll_interval=_positive_number(
            options.get("poll_interval", DEFAULT_POLL_INTERVAL), "poll_interval"
        ),
        job_types=job_types,
        on_error=on_error,
        verbose=bool(options.get("verbose", False)),
        lease=timedelta(seconds=lease),
        heartbeat_interval=interval,
        shutdown_grace=max(0.0, float(options.get("shutdown_grace", DEFAULT_SHUTDOWN_GRACE))),
        give_up_after=(
            None if give_up_after is None else _positive_number(give_up_after, "give_up_after")
        ),
        claim_all_types=bool(options.get("claim_all_types", False)),
        retry_policy=retry_policy(options.get("retry_on"), options.get("dont_retry_on")),
    )


def check_handlers(handlers: Any) -> dict[str, Callable[..., Any]]:
    if not isinstance(handlers, Mapping):
        raise ConfigurationError(
            f"handlers must be a mapping of job type to function, got {type(handlers).__name__}"
        )
    out: dict[str, Callable[..., Any]] = {}
    for name, fn in handlers.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"handler keys must be job type strings, got {name!r}")
        if not callable(fn):
            raise ConfigurationError(f"the handler for {name!r} is not callable: {fn!r}")
        out[name] = fn
    return out


def claim_types_for(
    options: ProcessorOptions, handlers: Mapping[str, Any]
) -> tuple[str, ...] | None:
    """The job types a processor claims: ``job_type=`` if given, else its handlers' types,
    else (``claim_all_types=True``) every type (None) — a type without a handler then fails
    ``no_handler``."""
    if options.job_types is not None:
        return options.job_types
    return None if options.claim_all_types else tuple(sorted(handlers))


def is_async_callable(fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _call_sync(handler: Callable[..., Any], payload: Any, ctx: JobContext) -> Any:
    return handler(payload, ctx)


class _Slot:
    """Bookkeeping of one launched job."""

    __slots__ = ("abandoned", "claimed_at", "completed", "finishing", "state")

    def __init__(self, state: JobState, claimed_at: float) -> None:
        self.state = state
        # Loop time the claim was sent: its lease runs from then at the earliest.
        self.claimed_at = claimed_at
        self.abandoned = False
        self.completed = False  # ended by queueing its completion
        # recording its failure or wait: over as far as a new claim of the job is concerned
        # (an immediate retry can be claimed before this run has cleaned up)
        self.finishing = False


class _Run:
    """One start of the continuous loop. Each start gets its own stop flag, so a stop is never
    undone by a loop that begins later, and a restart while the previous loop still winds
    down cannot revive that loop."""

    __slots__ = ("finished", "stopping")

    def __init__(self) -> None:
        self.stopping: bool = False
        self.finished: asyncio.Event = asyncio.Event()


class Engine:
    """Claims and runs jobs for one worker id on the event loop it is first used on."""

    def __init__(
        self,
        backend: AsyncBackend,
        hooks: EventEmitter,
        handlers: Mapping[str, Callable[..., Any]],
        options: ProcessorOptions,
    ) -> None:
        self.backend = backend
        self.hooks = hooks
        self.handlers: dict[str, Callable[..., Any]] = dict(handlers)
        self.opts = options
        self._async_handlers = {name: is_async_callable(fn) for name, fn in self.handlers.items()}
        self.claim_types: tuple[str, ...] | None = claim_types_for(options, self.handlers)
        from dataqueue.backends.base_async import AsyncBackend

        self._batch_complete = (
            getattr(type(backend), "complete_jobs", None) is not AsyncBackend.complete_jobs
        )
        # A task's own retry_on/dont_retry_on win over the processor's.
        self._policies: dict[str, RetryPolicy] = {}
        for name, fn in self.handlers.items():
            own = getattr(fn, RETRY_POLICY_ATTR, None)
            if isinstance(own, RetryPolicy) and (own.retry_on or own.dont_retry_on):
                self._policies[name] = own
        self.outcomes: Outcomes = Outcomes(
            backend, hooks, options.worker_id, verbose=options.verbose, report=self.report
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None
        self._kick_waiters: list[asyncio.Future[None]] = []  # _wait_kick's, woken by a kick
        # Runs by (job id, lock version): one claim of a job is one run. ``_by_job`` is the
        # run of a job this worker has in flight (never two: see ``_launch``).
        self._in_flight: dict[tuple[int, int], _Slot] = {}
        self._by_job: dict[int, _Slot] = {}
        # Jobs claimed again while this worker's earlier run of them had not ended (a lapsed
        # lease): launched once that run is over, so one worker never runs a job twice at once.
        self._deferred: dict[int, tuple[JobRecord, float]] = {}
        self._completing: dict[int, JobState] = {}
        # A claim failed with a transient error: it may have claimed jobs whose reply was
        # lost; the next claim first recovers them (see ``_recover_claimed``).
        self._claim_unsure = False
        self._claim_sent = 0.0  # loop time the latest claim was sent (its jobs' claimed_at)
        # A run starting later than this after its claim checks that it still holds the job
        # (see _still_held); a third of the lease even with a longer heartbeat interval.
        self._recheck_after = min(options.heartbeat_interval, options.lease.total_seconds() / 3)
        self._pending: list[tuple[JobState, Any]] = []
        self._flush_task: asyncio.Task[None] | None = None
        self._hb_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor: DaemonThreadPool | None = None
        self._run: _Run | None = None
        self._loop_lock: asyncio.Lock | None = None
        self._shutting_down = False
        # The last claim found fewer jobs than it asked for (and no group cap was involved).
        self._queue_empty = False
        # Claims failing in a row: since when (loop time), how many, when last logged.
        self._outage_since: float | None = None
        self._outage_failures = 0
        self._outage_logged = 0.0
        self._claimed_once = False
        #: Why the loop ended on its own (misconfiguration, or ``give_up_after`` exceeded).
        self.fatal: DataQueueError | None = None

    # -- small helpers ---------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._kick = asyncio.Event()
            self._loop_lock = asyncio.Lock()
        elif self._loop is not loop:
            raise RuntimeError("a processor is bound to the event loop it first ran on")
        return loop

    @property
    def worker_id(self) -> str:
        return self.opts.worker_id

    def is_running(self) -> bool:
        """True from :meth:`begin` until that run's loop has ended."""
        run = self._run
        return run is not None and not run.finished.is_set()

    def in_flight_count(self) -> int:
        return len(self._in_flight) + len(self._deferred)

    def _kick_loop(self) -> None:
        if self._kick is not None:
            self._kick.set()
            for done in self._kick_waiters:
                _resolve(done)

    def report(self, exc: BaseException) -> None:
        """An error outside any job's outcome: log, ``error`` hook, ``on_error``; never raises."""
        log.error("processor %s: %s", self.worker_id, exc, exc_info=self.opts.verbose)
        self._notify(exc)

    def _notify(self, exc: BaseException) -> None:
        """The ``error`` hook and ``on_error`` (without logging)."""
        self.hooks.emit("error", exc)
        if self.opts.on_error is not None:
            try:
                result = self.opts.on_error(exc)
                if inspect.isawaitable(result):
                    task = self.loop.create_task(self._guard(result))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            except Exception as inner:
                log.exception("on_error raised", exc_info=inner)

    async def _guard(self, awaitable: Any) -> None:
        try:
            await awaitable
        except Exception as exc:
            log.exception("on_error raised", exc_info=exc)

    def _executor_for_sync(self) -> DaemonThreadPool:
        if self._executor is None:
            self._executor = DaemonThreadPool(self.opts.concurrency)
        return self._executor

    def _abandon_thread(self) -> None:
        """A timed-out sync handler keeps its thread; give new jobs a fresh pool."""
        old, self._executor = self._executor, None
        if old is not None:
            old.shutdown(wait=False)

    # -- claiming --------------------------------------------------------------------------
    async def _claim(self, limit: int, offer: bool = False) -> list[JobRecord]:
        """``offer``: the continuous loop, whose waiter stands by, offers the slots a short
        claim leaves free to hand-offs until its next claim (one per poll interval at the
        latest) or, should this process die, for about two intervals."""
        self._claim_sent = self.loop.time()
        return await self.backend.claim_jobs(
            self.worker_id,
            limit,
            job_types=self.claim_types,
            group_concurrency=self.opts.group_concurrency,
            lease=self.opts.lease,
            offer=timedelta(seconds=2 * self.opts.poll_interval + 1) if offer else None,
        )

    async def _cron_hook(self) -> None:
        try:
            await self.backend.enqueue_due_cron_jobs(next_run_for)
        except Exception as exc:
            self.report(exc)

    def _known_ids(self) -> set[int]:
        return {*self._by_job, *self._completing, *self._deferred}

    async def _recover_claimed(self) -> list[JobRecord]:
        """After a claim whose reply may have been lost: the jobs the store shows this worker
        holding that it does not know of were claimed by that call. They run now, under that
        claim, so the lost reply costs them no attempt (instead of a lease lapse and a
        requeue with the attempt consumed)."""
        before = self._known_ids()
        held = await with_retries(self.backend.held_jobs, self.worker_id)
        known = before | self._known_ids()
        found = [job for job in held if job.id not in known]
        if found:
            log.warning(
                "processor %s: recovered %d job(s) claimed by a claim whose reply was lost",
                self.worker_id,
                len(found),
            )
        return found

    def _launch(
        self, job: JobRecord, claimed_at: float, gate: asyncio.Semaphore | None = None
    ) -> None:
        prior = self._by_job.get(job.id)
        if prior is not None or job.id in self._completing:
            self._reclaimed_while_running(prior, job, claimed_at)
            return
        self._start(job, claimed_at, gate)

    def _reclaimed_while_running(
        self, prior: _Slot | None, job: JobRecord, claimed_at: float
    ) -> None:
        """This worker claimed ``job`` again while its earlier run had not ended (its lease
        lapsed: heartbeats failing for a whole lease, a blocked loop). A run that still
        holds nothing refused hands over to the new claim (it keeps running, now fenced by the
        new lock version); otherwise the new claim waits for the old run to end."""
        old = prior.state.job if prior is not None else self._completing[job.id].job
        if prior is not None and not (
            prior.abandoned or prior.completed or prior.finishing or prior.state.fenced
        ):
            log.warning(
                "job %s: claimed again (lock version %s) while its run under lock version %s "
                "was still going; that run continues under the new claim",
                job.id,
                job.lock_version,
                old.lock_version,
            )
            del self._in_flight[(old.id, old.lock_version)]
            prior.state.job = job
            prior.claimed_at = claimed_at
            self._in_flight[(job.id, job.lock_version)] = prior
            return
        log.warning(
            "job %s: claimed again (lock version %s) while its earlier run (lock version %s) "
            "was ending; it starts once that run is over",
            job.id,
            job.lock_version,
            old.lock_version,
        )
        self._deferred[job.id] = (job, claimed_at)

    def _release_deferred(self, job_id: int) -> None:
        if job_id in self._by_job or job_id in self._completing:
            return
        deferred = self._deferred.pop(job_id, None)
        if deferred is not None:
            self._start(*deferred, None)

    def _start(self, job: JobRecord, claimed_at: float, gate: asyncio.Semaphore | None) -> None:
        loop = self.loop
        hooks = self.hooks
        state = JobState(
            job,
            backend=self.backend,
            hooks=hooks,
            worker_id=self.opts.worker_id,
            loop=loop,
            lease=self.opts.lease,
        )
        slot = _Slot(state, claimed_at)
        self._in_flight[(job.id, job.lock_version)] = slot
        self._by_job[job.id] = slot
        if hooks.wants("job:processing"):
            hooks.emit("job:processing", {"job_id": job.id, "job_type": job.job_type})
        if log.isEnabledFor(logging.INFO):
            log_started(job)
        task = loop.create_task(self._process(slot, gate))
        self._tasks.add(task)
        task.add_done_callback(partial(self._task_done, slot=slot))
        if self._hb_task is None or self._hb_task.done():
            self._hb_task = loop.create_task(self._heartbeat())

    def _task_done(self, task: asyncio.Task[None], slot: _Slot | None = None) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.report(task.exception())  # type: ignore[arg-type]
        # A freed slot is worth a claim — except after a plain completion while the queue is
        # known to be empty: a completion makes nothing claimable that the backend does not
        # announce itself (new jobs, released dependents wake the loop), and an empty claim
        # per finished job would only delay the next woken one.
        if slot is None or not slot.completed or not self._queue_empty:
            self._kick_loop()

    # -- one job ---------------------------------------------------------------------------
    async def _process(self, slot: _Slot, gate: asyncio.Semaphore | None) -> None:
        state = slot.state
        try:
            if gate is not None:
                async with gate:
                    await self._execute(slot)
            else:
                await self._execute(slot)
        except asyncio.CancelledError:
            if not slot.abandoned:
                raise
        except Exception as exc:  # a backend failure while finishing: the lease covers it
            self.report(exc)
        finally:
            job = state.job  # the claim it ended under (it may have taken over a newer one)
            if self._in_flight.get((job.id, job.lock_version)) is slot:
                del self._in_flight[(job.id, job.lock_version)]
            if self._by_job.get(job.id) is slot:
                del self._by_job[job.id]
            if self._deferred:
                self._release_deferred(job.id)

    async def _execute(self, slot: _Slot) -> None:
        if self.loop.time() - slot.claimed_at > self._recheck_after and not (
            await self._still_held(slot)
        ):
            return
        state = slot.state
        job = state.job
        handler = self.handlers.get(job.job_type)
        if handler is None:
            slot.finishing = True
            await self.outcomes.no_handler(state)
            return
        try:
            if state.step_data and any(key.startswith(WAIT_PREFIX) for key in state.step_data):
                await state.resolve_waits()
            value = await self._invoke(handler, state)
        except WaitSignal as signal:
            if not self._dropped(slot, "wait"):
                slot.finishing = True
                await self.outcomes.park(state, signal)
            return
        except Exception as exc:
            if self._dropped(slot, "failure") or (
                self._shutting_down and state.cancelled.reason == "shutdown"
            ):
                return
            reason = (
                FailureReason.TIMEOUT
                if isinstance(exc, JobTimeoutError)
                else FailureReason.HANDLER_ERROR
            )
            policy = self._policies.get(job.job_type, self.opts.retry_policy)
            slot.finishing = True
            await self.outcomes.fail(state, exc, reason, policy)
            return
        if self._dropped(slot, "result"):
            return
        output: Any = KEEP if state.output_set or value is None else value
        if output is not KEEP:
            try:
                dump_json(output, "the handler's return value")
            except InvalidJobError as exc:
                slot.finishing = True
                await self.outcomes.fail(state, exc, FailureReason.HANDLER_ERROR)
                return
        slot.completed = True
        self._queue_completion(state, output)

    async def _still_held(self, slot: _Slot) -> bool:
        """Before a run starts over ``_recheck_after`` after its claim: renew the lease, and
        start only if this worker still holds the job. The lease may have lapsed meanwhile and
        another worker taken the job over (a claim reply left unread while the process was
        paused, a start held up by a busy loop or a full gate)."""
        state = slot.state
        try:
            held = await with_retries(
                self.backend.heartbeat,
                self.worker_id,
                [state.job.id],
                self.opts.lease,
                budget=self.opts.heartbeat_interval,
            )
        except Exception as exc:
            # Unknown, with the store out of reach: run it (the lease rules an outage anyway;
            # not starting would cost the attempt for nothing if this worker still holds it).
            self.report(exc)
            return True
        if not held:
            state.lose("start")
        return bool(held)

    def _dropped(self, slot: _Slot, what: str) -> bool:
        if slot.abandoned or slot.state.fenced:
            log.warning(
                "job %s: %s discarded (worker %s no longer holds the job)",
                slot.state.job.id,
                what,
                self.worker_id,
            )
            return True
        return False

    async def _invoke(self, handler: Callable[..., Any], state: JobState) -> Any:
        job = state.job
        timeout_ms = job.timeout_ms if job.timeout_ms and job.timeout_ms > 0 else None
        if job.force_kill_on_timeout and timeout_ms is not None:
            return await run_force_killed(handler, state)
        if job.force_kill_on_timeout:
            log.info("job %s: force_kill_on_timeout without timeout_ms runs normally", job.id)
        is_async = self._async_handlers.get(job.job_type, False)
        fut: asyncio.Future[Any]
        if is_async:
            coro = handler(job.payload, AsyncJobContext(state))
            if timeout_ms is None:
                return await coro
            fut = self.loop.create_task(coro)
        else:
            fut = self.loop.run_in_executor(
                self._executor_for_sync(), _call_sync, handler, job.payload, JobContext(state)
            )
            if timeout_ms is None:
                result = await fut
                if inspect.isawaitable(result):  # a def returning a coroutine
                    result = await result
                return result
        try:
            return await self._with_timeout(fut, state, is_async)
        finally:
            if is_async and not fut.done():
                fut.cancel()

    async def _with_timeout(self, fut: asyncio.Future[Any], state: JobState, is_async: bool) -> Any:
        loop = self.loop
        assert state.armed_ms is not None
        state.deadline = loop.time() + state.armed_ms / 1000.0
        while True:
            remaining = state.deadline - loop.time()
            if remaining > 0:
                done, _ = await asyncio.wait({fut}, timeout=remaining)
                if done:
                    break
                continue
            extension = await self._ask_on_timeout(state, is_async)
            if extension is not None:
                state.armed_ms = int(extension)
                state.deadline = loop.time() + extension / 1000.0
                await state.extend_lease(extension)
                continue
            state.cancelled.set("timeout")
            if is_async:
                fut.cancel()
                await asyncio.wait({fut}, timeout=1.0)
            else:
                self._abandon_thread()
            raise JobTimeoutError(state.armed_ms)
        result = fut.result()
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _ask_on_timeout(self, state: JobState, is_async: bool) -> float | None:
        callback = state.on_timeout_cb
        if callback is None:
            return None
        try:
            if is_async:
                value = callback()
                if inspect.isawaitable(value):
                    value = await value
            else:  # it may use the blocking ctx, which must not run on the loop
                value = await self.loop.run_in_executor(None, callback)
        except Exception as exc:
            log.warning("job %s: on_timeout callback raised: %s", state.job.id, exc)
            return None
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value > 0
        ):
            return float(value)
        return None

    # -- completions (failures and waits: worker/outcome.py) ----------------------------
    def _queue_completion(self, state: JobState, output: Any) -> None:
        self._completing[state.job.id] = state
        self._pending.append((state, output))
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = self.loop.create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[:MAX_FLUSH]
            del self._pending[:MAX_FLUSH]
            items = [(s.job.id, self.worker_id, s.job.lock_version, out) for s, out in batch]
            results: list[bool | None]
            try:
                results = await self._complete(items)
            except Exception as exc:  # left processing: the lease brings them back
                self.report(exc)
                results = [None] * len(batch)
            hooks = self.hooks
            loud = log.isEnabledFor(logging.INFO)
            now = self.loop.time()
            for (state, _), ok in zip(batch, results, strict=False):
                job = state.job
                if ok is False and await self.outcomes.applied_by_me(job, COMPLETED):
                    ok = True  # a retry after a lost reply: the first try was applied
                self._completing.pop(job.id, None)
                if ok:
                    if loud:
                        log_completed(job, now - state.started_at)
                    if hooks.wants("job:completed"):
                        hooks.emit("job:completed", {"job_id": job.id, "job_type": job.job_type})
                elif ok is False:
                    log.warning("job %s: completion discarded (fenced off)", job.id)
                if self._deferred:
                    self._release_deferred(job.id)
            if self._completions_may_unblock(batch):
                self._kick_loop()

    def _completions_may_unblock(self, batch: list[tuple[JobState, Any]]) -> bool:
        """Whether finishing ``batch`` may have made jobs claimable that no backend wake-up
        announces: freed group slots, tag drains (tagged jobs) — or anything, unless the
        last claim found the queue empty (released dependents are announced)."""
        return (
            not self._queue_empty
            or self.opts.group_concurrency is not None
            or any(state.job.tags for state, _ in batch)
        )

    async def _complete(self, items: list[tuple[int, str, int, Any]]) -> list[bool | None]:
        # Retried for as long as a lease lasts (not a fixed few tries): a server restart
        # (a Redis AOF load takes seconds) must not turn finished runs into re-runs.
        budget = self.opts.lease.total_seconds()
        if self._batch_complete or len(items) == 1:
            return list(await with_retries(self.backend.complete_jobs, items, budget=budget))
        # The backend has no batch statement: complete concurrently over its pool instead
        # of one after another.
        results = await asyncio.gather(
            *(with_retries(self.backend.complete_job, *item, budget=budget) for item in items),
            return_exceptions=True,
        )
        out: list[bool | None] = []
        for result in results:
            if isinstance(result, BaseException):
                self.report(result)
                out.append(None)
            else:
                out.append(bool(result))
        return out

    async def _drain_completions(self) -> None:
        while self._flush_task is not None and not self._flush_task.done():
            await asyncio.shield(self._flush_task)

    # -- heartbeat -------------------------------------------------------------------------
    def _ensure_heartbeat(self) -> None:
        if self._hb_task is None or self._hb_task.done():
            self._hb_task = self.loop.create_task(self._heartbeat())

    async def _heartbeat(self) -> None:
        while self.is_running() or self._in_flight or self._completing or self._deferred:
            await asyncio.sleep(self.opts.heartbeat_interval)
            ids = [i for i, s in self._by_job.items() if not s.abandoned]
            ids.extend(self._completing)
            ids.extend(self._deferred)
            if not ids:
                continue
            try:
                # Retried like every other worker write, until the next beat is due: with
                # connections dropping about once per interval a single try loses leases.
                await with_retries(
                    self.backend.heartbeat,
                    self.worker_id,
                    ids,
                    self.opts.lease,
                    budget=self.opts.heartbeat_interval,
                )
            except Exception as exc:
                self.report(exc)

    # -- the continuous pool ---------------------------------------------------------------
    async def _work_waiter(self, run: _Run, subscribed: asyncio.Event) -> None:
        """Turn backend wake-ups into kicks of the claim loop. Its first call subscribes
        (the subscription is this task's own: see ``current_waiter``), then sets
        ``subscribed`` (also when it failed: the waiter's next tries report that)."""
        failures = 0
        loop = self.loop
        try:
            await self.backend.wait_for_work(0, self.worker_id)
        except Exception:
            failures = 1
        subscribed.set()
        while not run.stopping:
            started = loop.time()
            try:
                woke = await self.backend.wait_for_work(self.opts.poll_interval, self.worker_id)
                failures = 0
            except Exception as exc:
                failures += 1
                # the claim loop logs an outage itself; this only covers a lone waiter failure
                if self._outage_since is None and (failures == 1 or failures % 20 == 0):
                    self.report(exc)
                await asyncio.sleep(min(self.opts.poll_interval, 0.05 * 2 ** min(failures, 8)))
                continue
            if woke:
                # Something may be claimable: the next freed slot claims, even if the last
                # claim found the queue empty (a wake-up that came while every slot was busy
                # must not be lost; Redis publishes the next one only after a short claim).
                self._queue_empty = False
                self._kick_loop()
                await asyncio.sleep(0)  # the loop claims (jobs handed over: at once) first
            elif loop.time() - started < 0.001:
                await asyncio.sleep(self.opts.poll_interval)  # a backend that cannot block

    def begin(self) -> _Run | None:
        """Mark the continuous loop as running, synchronously (call on the engine's loop);
        return the run to pass to :meth:`run_loop`, or None if a run is already active and
        not stopping. A run that is stopping but still winding down does not block a new
        one: the new run waits for it to end, then claims."""
        self.loop  # noqa: B018 - binds the loop
        current = self._run
        if current is not None and not current.finished.is_set() and not current.stopping:
            return None
        run = _Run()
        self._run = run
        self._shutting_down = False
        self.fatal = None  # a new run gets a fresh chance (e.g. after a give-up)
        return run

    def start_background(self) -> asyncio.Task[None] | None:
        """:meth:`begin` and run the loop as a task of the running loop; None if already
        running. The run counts as running from this call on."""
        run = self.begin()
        if run is None:
            return None
        task = self.loop.create_task(self.run_loop(run))
        # A task cancelled before its first step never runs run_loop's ``finally``.
        task.add_done_callback(lambda _t: run.finished.set())
        return task

    async def run_loop(self, run: _Run | None = None) -> None:
        """Claim and run jobs until :meth:`stop` (``run`` from :meth:`begin`; begun here
        when omitted — then a no-op if a run is already active)."""
        if run is None:
            run = self.begin()
            if run is None:
                return
        assert self._loop_lock is not None
        try:
            async with self._loop_lock:  # an earlier run still winding down ends first
                if not run.stopping:
                    await self._loop_body(run)
        finally:
            run.finished.set()

    async def _loop_body(self, run: _Run) -> None:
        loop = self.loop
        assert self._kick is not None
        # Subscribe to wake-ups before the first claim: once a claim finds the queue empty,
        # the loop relies on them (a failure here is reported by the waiter's own attempt).
        subscribed = asyncio.Event()
        waiter = loop.create_task(self._work_waiter(run, subscribed))
        self._ensure_heartbeat()
        next_cron = loop.time()
        opts = self.opts
        try:
            await subscribed.wait()
            while not run.stopping:
                if loop.time() >= next_cron:
                    await self._cron_hook()
                    next_cron = loop.time() + opts.poll_interval
                    continue
                free = opts.concurrency - self.in_flight_count()
                if free > 0:
                    want = min(free, opts.batch_size)
                    self._kick.clear()
                    try:
                        if self._claim_unsure:
                            claimed_at = self._claim_sent  # the unsure claim's
                            recovered = await self._recover_claimed()
                            self._claim_unsure = False
                            for job in recovered:
                                self._launch(job, claimed_at)
                            if recovered:
                                continue
                        jobs = await self._claim(want, offer=True)
                    except Exception as exc:
                        self._claim_unsure = self._claim_unsure or is_transient(exc)
                        backoff = self._claim_failed(exc, run)
                        await self._sleep(backoff, run)
                        continue
                    self._claim_succeeded()
                    self._queue_empty = len(jobs) < want and opts.group_concurrency is None
                    for job in jobs:
                        self._launch(job, self._claim_sent)
                    if len(jobs) == want:
                        continue
                else:
                    self._kick.clear()
                    if self.in_flight_count() < opts.concurrency:
                        continue
                await self._wait_kick(next_cron - loop.time())
        finally:
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
            try:  # what was handed and not claimed goes back at once (else: at its lease's end)
                await with_retries(self.backend.end_claims, self.worker_id, budget=1.0)
            except Exception as exc:
                log.warning(
                    "processor %s: could not withdraw its offer of free slots (it lapses by "
                    "itself; jobs handed meanwhile come back when their lease ends): %s",
                    self.worker_id,
                    exc,
                )

    def _claim_failed(self, exc: BaseException, run: _Run) -> float:
        """Count a failed claim, log it (once, then every ``OUTAGE_LOG_EVERY`` s), stop the run
        on a misconfiguration at start-up or after ``give_up_after``; return the backoff."""
        self._notify(exc)
        now = self.loop.time()
        opts = self.opts
        cause = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, ConfigurationError) and not self._claimed_once:
            log.error("processor %s: cannot start: %s", self.worker_id, cause)
            self.fatal = exc
            run.stopping = True
            return 0.0
        if self._outage_since is None:
            self._outage_since, self._outage_failures, self._outage_logged = now, 0, now
            log.warning(
                "processor %s: backend unavailable, retrying with backoff: %s",
                self.worker_id,
                cause,
                exc_info=exc if opts.verbose else None,
            )
        self._outage_failures += 1
        down = now - self._outage_since
        if opts.give_up_after is not None and down >= opts.give_up_after:
            log.error(
                "processor %s: giving up after %.0f s without the backend (%d failed attempts): %s",
                self.worker_id,
                down,
                self._outage_failures,
                cause,
            )
            self.fatal = BackendError(
                f"gave up after {down:.0f} s without the backend (give_up_after="
                f"{opts.give_up_after:g}): {cause}"
            )
            run.stopping = True
            return 0.0
        if now - self._outage_logged >= OUTAGE_LOG_EVERY:
            self._outage_logged = now
            left = (
                ""
                if opts.give_up_after is None
                else f"; giving up in {opts.give_up_after - down:.0f} s"
            )
            log.warning(
                "processor %s: backend still unavailable after %.0f s (%d failed attempts)%s: %s",
                self.worker_id,
                down,
                self._outage_failures,
                left,
                cause,
            )
        backoff = min(opts.poll_interval, 0.05 * 2 ** min(self._outage_failures, 8))
        return backoff if is_transient(exc) else opts.poll_interval

    def _claim_succeeded(self) -> None:
        self._claimed_once = True
        if self._outage_since is not None:
            log.warning(
                "processor %s: backend available again after %.0f s (%d failed attempts)",
                self.worker_id,
                self.loop.time() - self._outage_since,
                self._outage_failures,
            )
            self._outage_since = None

    async def _wait_kick(self, timeout: float) -> None:
        kick = self._kick
        assert kick is not None
        if timeout <= 0 or kick.is_set():
            return
        # A future woken by the kick or a timer: the loop resumes one event-loop step after
        # the kick (wait_for on Event.wait takes three: a task, its callback, the waiter).
        done = self.loop.create_future()
        timer = self.loop.call_later(timeout, _resolve, done)
        kick_waiters = self._kick_waiters
        kick_waiters.append(done)
        try:
            await done
        finally:
            timer.cancel()
            with contextlib.suppress(ValueError):
                kick_waiters.remove(done)

    async def _sleep(self, seconds: float, run: _Run) -> None:
        """Sleep, but wake early on stop."""
        end = self.loop.time() + seconds
        while not run.stopping and self.loop.time() < end:
            assert self._kick is not None
            self._kick.clear()
            await self._wait_kick(end - self.loop.time())

    # -- one-shot --------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Run the cron hook, claim one batch, process it; return how many were claimed."""
        self.loop  # noqa: B018 - binds the loop
        await self._cron_hook()
        try:
            jobs = await self._claim(self.opts.batch_size)
        except Exception as exc:
            self.report(exc)
            if not is_transient(exc):
                return 0
            try:  # its reply may be what was lost: run what it claimed (see _recover_claimed)
                jobs = await self._recover_claimed()
            except Exception as again:
                self.report(again)
                return 0
        gate = asyncio.Semaphore(self.opts.concurrency)
        before = set(self._tasks)
        for job in jobs:
            self._launch(job, self._claim_sent, gate)
        mine = [t for t in self._tasks if t not in before]
        if mine:
            await asyncio.wait(mine)
        await self._drain_completions()
        return len(jobs)

    # -- stopping --------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop claiming; running handlers continue (their leases keep being renewed).

        Safe from any thread (and from a signal handler): the flag is set at once, the loop
        is woken on its own thread."""
        run = self._run
        if run is not None:
            run.stopping = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is loop:
            self._kick_loop()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._kick_loop)

    def cancel_running(self, reason: str = "shutdown") -> None:
        """Set ``ctx.cancelled`` of every running job."""
        for slot in self._in_flight.values():
            slot.state.cancelled.set(reason)

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for running jobs to finish and be recorded; jobs still
        running then are abandoned (left ``processing`` for lease reclaim). True if all
        finished."""
        loop = self.loop
        end = loop.time() + max(0.0, timeout)
        run = self._run
        if run is not None and not run.finished.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(run.finished.wait(), max(0.0, end - loop.time()))
        tasks = [t for t in self._tasks if not t.done()]
        pending: set[asyncio.Task[None]] = set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(0.0, end - loop.time()))
        if pending:
            self._shutting_down = True
            for slot in self._in_flight.values():
                slot.abandoned = True
                slot.state.cancelled.set("shutdown")
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)
            self._abandon_thread()
            log.warning(
                "processor %s: %d job(s) still running after %.1fs were left for lease reclaim",
                self.worker_id,
                len(pending),
                timeout,
            )
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drain_completions(), max(1.0, end - loop.time()))
        return not pending

    async def shutdown(self, grace: float | None = None) -> None:
        """Graceful stop (SIGINT/SIGTERM): stop claiming, signal ``ctx.cancelled``, wait up
        to ``grace`` seconds, leave what still runs for lease reclaim."""
        self._shutting_down = True
        self.stop()
        self.cancel_running("shutdown")
        await self.drain(self.opts.shutdown_grace if grace is None else grace)

    async def close(self) -> None:
        """Release the thread pool and stop the heartbeat (after draining)."""
        if self._hb_task is not None and not self._hb_task.done() and not self._in_flight:
            self._hb_task.cancel()
            await asyncio.gather(self._hb_task, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
