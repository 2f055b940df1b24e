"""The running job's state, shared by the processor and the handler context twins.

The context's I/O methods (``context_async.AsyncJobContext`` and its generated blocking twin
``context_sync.JobContext``) call the coroutines of :class:`JobState`, which always run on the
worker's event loop; a blocking context hands them over with :func:`run_on_loop`.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

from dataqueue.errors import InvalidJobError, JobLostError
from dataqueue.lifecycle import MSG_TOKEN_TIMED_OUT, TOKEN_PREFIX, WAIT_PREFIX
from dataqueue.options import check_text, dump_json, parse_token_timeout, stored_datetime
from dataqueue.records import JobRecord, TokenStatus
from dataqueue.worker.execution import with_retries
from dataqueue.worker.joblog import log

if TYPE_CHECKING:
    from dataqueue.backends.base_async import AsyncBackend
    from dataqueue.hooks import EventEmitter

__all__ = [
    "CancelToken",
    "ContextBase",
    "JobState",
    "WaitSignal",
    "awaited",
    "check_progress",
    "run_on_loop",
    "step_completed",
    "wait_for_end",
    "wait_until_end",
]


T = TypeVar("T")


class WaitSignal(BaseException):
    """Raised by ``ctx.wait_*`` to park the job; the processor turns it into a ``waiting`` job.

    A ``BaseException`` so that a handler's broad ``except Exception`` does not swallow it.
    """

    def __init__(self, wait_until: datetime | None, token_id: str | None) -> None:
        super().__init__("WaitSignal")
        self.wait_until = wait_until
        self.token_id = token_id


#: Guards the creation of a token's threading.Event against a concurrent ``set``.
_TOKEN_LOCK = threading.Lock()


class CancelToken:
    """Set when the handler should stop: timeout, worker shutdown or a lost lease.

    Usable from the event loop (``await token.wait()``) and from handler threads
    (``token.is_set()``, ``token.wait_blocking(timeout)``).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._set = False
        # A threading.Event only once a thread blocks on the token: most jobs never do, and
        # making one per job was a visible part of starting a job.
        self._blocking: threading.Event | None = None
        self._event: asyncio.Event | None = None
        self.reason: str | None = None

    def is_set(self) -> bool:
        """True once the job was asked to stop."""
        return self._set

    def __bool__(self) -> bool:
        return self._set

    def set(self, reason: str = "cancelled") -> None:
        """Ask the handler to stop (thread-safe; the first reason wins)."""
        with _TOKEN_LOCK:
            if self._set:
                return
            self.reason = reason
            self._set = True
            blocking = self._blocking
        if blocking is not None:
            blocking.set()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._set_event()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._set_event)

    def _set_event(self) -> None:
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        """Wait (on the worker's event loop) until the token is set."""
        if self._set:
            return
        if self._event is None:
            self._event = asyncio.Event()
            if self._set:
                return
        await self._event.wait()

    def wait_blocking(self, timeout: float | None = None) -> bool:
        """Block the calling thread until set or ``timeout`` seconds pass; returns is_set()."""
        with _TOKEN_LOCK:  # set() reads _blocking under it: no wake-up is lost
            if self._set:
                return True
            if self._blocking is None:
                self._blocking = threading.Event()
            blocking = self._blocking
        return blocking.wait(timeout) or self._set


def step_completed(entry: Any) -> TypeGuard[dict[str, Any]]:
    """Whether a step-data entry is a finished ``ctx.run`` step."""
    return isinstance(entry, dict) and entry.get("__completed") is True


def check_progress(progress: Any) -> None:
    """Reject a progress value that is not a number from 0 to 100."""
    if (
        isinstance(progress, bool)
        or not isinstance(progress, (int, float))
        or math.isnan(progress)
        or not 0 <= progress <= 100
    ):
        raise InvalidJobError(f"Progress must be between 0 and 100, got {progress!r}")


class JobState:
    """Everything the processor and the context share about one running job."""

    def __init__(
        self,
        job: JobRecord,
        *,
        backend: AsyncBackend,
        hooks: EventEmitter,
        worker_id: str,
        loop: asyncio.AbstractEventLoop,
        lease: timedelta,
    ) -> None:
        self.job = job
        self.backend = backend
        self.hooks = hooks
        self.worker_id = worker_id
        self.loop = loop
        self.lease = lease
        self.started_at: float = loop.time()  # for the duration in the job's log lines
        self.step_data: dict[str, Any] = dict(job.step_data or {})
        self.cancelled: CancelToken = CancelToken(loop)
        self.output_set: bool = False
        self.wait_counter: int = 0
        self.token_counter: int = 0
        self.fenced: bool = False
        # Timeout bookkeeping (loop.time() based); deadline None = no timeout.
        self.armed_ms: int | None = job.timeout_ms if job.timeout_ms else None
        self.deadline: float | None = None
        self.on_timeout_cb: Callable[[], Any] | None = None

    # -- operations shared by both context twins (always run on the loop) ---------------
    def _write_failed(self, what: str, exc: Exception) -> None:
        """A best-effort write failed: log it and emit ``error``; the job carries on."""
        log.warning("job %s: could not %s: %s", self.job.id, what, exc)
        self.hooks.emit("error", exc)

    def lose(self, what: str) -> None:
        """The store refused a fenced write: this worker no longer holds the job (its lease
        lapsed and another worker took over, or it was retried). Drop the write, log it and
        ask the handler to stop."""
        if not self.fenced:
            log.warning(
                "job %s: %s dropped: worker %s no longer holds attempt (lock version %s)",
                self.job.id,
                what,
                self.worker_id,
                self.job.lock_version,
            )
        self.fenced = True
        self.cancelled.set("lost")

    async def _fenced_write(
        self, what: str, method: Callable[..., Awaitable[bool]], value: Any
    ) -> bool:
        """One fenced handler write, retried on transient errors; True if it was applied."""
        job = self.job
        try:
            ok = await with_retries(method, job.id, self.worker_id, job.lock_version, value)
        except Exception as exc:  # best-effort: a lost write never fails the job
            self._write_failed(f"store {what}", exc)
            return True
        if not ok:
            self.lose(what)
        return ok

    async def set_progress(self, progress: float) -> None:
        check_progress(progress)
        value = round(progress)
        if await self._fenced_write("progress", self.backend.set_progress, value):
            self.hooks.emit("job:progress", {"job_id": self.job.id, "progress": value})

    async def set_output(self, data: Any) -> None:
        text = dump_json(data, "output")
        self.output_set = True
        if await self._fenced_write("output", self.backend.set_output, text):
            self.hooks.emit("job:output", {"job_id": self.job.id, "output": data})

    async def parent_outputs(self) -> dict[int, Any]:
        ids = self.job.depends_on_job_ids or ()
        if not ids:
            return {}
        return await self.backend.get_outputs(list(ids))

    async def persist_steps(self) -> None:
        # A failure to store means the step re-runs on the next invocation at worst.
        await self._fenced_write("step data", self.backend.set_step_data, self.step_data)

    def cached_step(self, name: str) -> tuple[bool, Any]:
        if not isinstance(name, str) or not name:
            raise InvalidJobError(f"step name must be a non-empty string, got {name!r}")
        entry = self.step_data.get(name)
        if step_completed(entry):
            return True, entry.get("result")
        return False, None

    async def store_step(self, name: str, result: Any) -> None:
        dump_json(result, f"result of step {name!r}")
        self.step_data[name] = {"__completed": True, "result": result}
        await self.persist_steps()

    def next_wait_key(self) -> str:
        key = f"{WAIT_PREFIX}{self.wait_counter}"
        self.wait_counter += 1
        return key

    def time_wait(self, kind: str, until: datetime) -> None:
        key = self.next_wait_key()
        entry = self.step_data.get(key)
        if isinstance(entry, dict) and entry.get("completed") is True:
            return
        self.step_data[key] = {"type": kind, "completed": False, "until": until.isoformat()}
        raise WaitSignal(wait_until=until, token_id=None)

    async def create_token(self, timeout: str | int | float | timedelta | None, tags: Any) -> str:
        key = f"{TOKEN_PREFIX}{self.token_counter}"
        self.token_counter += 1
        done, cached = self.cached_step(key)
        if done:
            return str(cached)
        delta = parse_token_timeout(timeout)
        tag_tuple: tuple[str, ...] | None = None
        if tags is not None:
            if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
                raise InvalidJobError(f"token tags must be a list of strings, got {tags!r}")
            tag_tuple = tuple(check_text(t, "token tag") for t in tags)
        holder = (self.worker_id, self.job.lock_version)
        token = await self.backend.create_token(self.job.id, delta, tag_tuple, holder)
        if token is None:  # a stale run: the token would be bound to a job it no longer holds
            self.lose("token")
            raise JobLostError(self.job.id, "create_token")
        await self.store_step(key, token.id)
        return token.id

    async def wait_for_token(self, token_id: str) -> dict[str, Any]:
        if not isinstance(token_id, str) or not token_id:
            raise InvalidJobError(f"token id must be a non-empty string, got {token_id!r}")
        check_text(token_id, "token id")
        key = self.next_wait_key()
        entry = self.step_data.get(key)
        if isinstance(entry, dict) and entry.get("completed") is True:
            return dict(entry.get("result") or {})
        result = await self.token_result(token_id)
        if result is not None:
            self.step_data[key] = {
                "type": "token",
                "token_id": token_id,
                "completed": True,
                "result": result,
            }
            await self.persist_steps()
            return result
        self.step_data[key] = {"type": "token", "token_id": token_id, "completed": False}
        raise WaitSignal(wait_until=None, token_id=token_id)

    async def token_result(self, token_id: str) -> dict[str, Any] | None:
        token = await self.backend.get_token(token_id)
        if token is None or token.status == TokenStatus.WAITING:
            return None
        if token.status == TokenStatus.COMPLETED:
            return {"ok": True, "output": token.output}
        return {"ok": False, "error": MSG_TOKEN_TIMED_OUT}

    async def resolve_waits(self) -> None:
        """Before a re-invocation: mark elapsed time waits done and resolve finished tokens."""
        changed = False
        for key, entry in list(self.step_data.items()):
            if not key.startswith(WAIT_PREFIX) or not isinstance(entry, dict):
                continue
            if entry.get("completed") is True:
                continue
            if entry.get("type") in ("duration", "date"):
                self.step_data[key] = {**entry, "completed": True}
                changed = True
            elif entry.get("type") == "token" and isinstance(entry.get("token_id"), str):
                result = await self.token_result(entry["token_id"])
                if result is not None:
                    self.step_data[key] = {**entry, "completed": True, "result": result}
                    changed = True
        if changed:
            await self.persist_steps()

    async def prolong(self, ms: float | None) -> None:
        if ms is not None and (
            isinstance(ms, bool) or not isinstance(ms, (int, float)) or not ms > 0
        ):
            raise InvalidJobError(f"prolong(ms) needs a positive number of ms, got {ms!r}")
        if self.armed_ms is not None:
            span = int(ms) if ms is not None else int(self.job.timeout_ms or self.armed_ms)
            self.armed_ms = span
            self.deadline = self.loop.time() + span / 1000.0
        await self.extend_lease(ms)

    async def extend_lease(self, ms: float | None) -> None:
        lease = self.lease
        if ms is not None:
            lease = max(lease, timedelta(milliseconds=ms))
        try:  # retried like the heartbeat: one dropped connection must not lose the lease
            ok = await with_retries(
                self.backend.prolong_job, self.job.id, self.worker_id, self.job.lock_version, lease
            )
        except Exception as exc:
            self._write_failed("prolong", exc)
            return
        if not ok:
            self.lose("prolong")


def wait_for_end(
    seconds: float, minutes: float, hours: float, days: float, weeks: float
) -> datetime:
    """When a ``ctx.wait_for(...)`` starting now ends; ``InvalidJobError`` for a bad duration."""
    for name, value in (
        ("seconds", seconds),
        ("minutes", minutes),
        ("hours", hours),
        ("days", days),
        ("weeks", weeks),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidJobError(f"wait_for({name}=...) needs a number, got {value!r}")
    try:
        total = timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days, weeks=weeks)
        until = datetime.now(timezone.utc) + total
    except (OverflowError, ValueError):  # inf, nan, or past datetime's range
        raise InvalidJobError(
            f"wait_for() duration is out of range: seconds={seconds!r}, minutes={minutes!r}, "
            f"hours={hours!r}, days={days!r}, weeks={weeks!r}"
        ) from None
    if total <= timedelta(0):
        raise InvalidJobError("wait_for() needs a positive total duration")
    return stored_datetime(until, "wait_for() end time")


def wait_until_end(when: datetime) -> datetime:
    """``ctx.wait_until(when)``'s end: an aware datetime a store can hold."""
    return stored_datetime(when, "wait_until()")


class ContextBase:
    """Fields and non-I/O methods common to both context twins."""

    __slots__ = ("_state",)

    def __init__(self, state: JobState) -> None:
        self._state = state

    @property
    def job_id(self) -> int:
        """The running job's id."""
        return self._state.job.id

    @property
    def job_type(self) -> str:
        """The running job's type."""
        return self._state.job.job_type

    @property
    def attempt(self) -> int:
        """Which attempt this is (1 for the first run; a resumed wait keeps its number)."""
        return self._state.job.attempts

    @property
    def payload(self) -> Any:
        """The running job's payload (also the handler's first argument)."""
        return self._state.job.payload

    @property
    def job(self) -> JobRecord:
        """The job record as claimed."""
        return self._state.job

    @property
    def cancelled(self) -> CancelToken:
        """Set on timeout, worker shutdown or a lost lease; poll it or wait on it."""
        return self._state.cancelled

    def on_timeout(self, callback: Callable[[], Any]) -> None:
        """Register the callback called when the timeout fires; returning a number of ms > 0
        extends the deadline (and the lease) by that much, anything else lets it time out.
        Replaces an earlier callback; no effect for a job without ``timeout_ms``."""
        if not callable(callback):
            raise InvalidJobError(f"on_timeout() needs a callable, got {callback!r}")
        self._state.on_timeout_cb = callback


def run_on_loop(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on ``loop`` from another thread and wait for its result (the blocking
    context's I/O). Refused on ``loop`` itself, where waiting for it would deadlock."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError(
            "the blocking JobContext cannot be used on the worker's event loop; "
            "use an async handler (it gets an AsyncJobContext)"
        )
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


async def awaited(value: Awaitable[T]) -> T:
    """``await value`` as a coroutine (what :func:`run_on_loop` accepts)."""
    return await value
