"""In-process event hooks: a small emitter shared by a queue and the processors it creates.

Events and their payloads (plain dicts with snake_case keys):

==================  ===========================================================================
``job:added``       ``{"job_id", "job_type", "created"}`` (``created`` is False for an
                    idempotency hit that returned an existing job)
``job:processing``  ``{"job_id", "job_type"}``
``job:completed``   ``{"job_id", "job_type"}``
``job:failed``      ``{"job_id", "job_type", "error", "will_retry"}``
``job:cancelled``   ``{"job_id"}``
``job:retried``     ``{"job_id"}``
``job:waiting``     ``{"job_id", "job_type"}``
``job:progress``    ``{"job_id", "progress"}``
``job:output``      ``{"job_id", "output"}``
``error``           the exception itself
==================  ===========================================================================

Listeners are called synchronously, in registration order, from the thread that emits. A
listener may be ``async def``: its coroutine is scheduled on the running event loop (or, with
no loop running, run to completion on a private one). A listener that raises never disturbs
the queue or the worker that emitted: the exception is logged and re-emitted on ``error``; an
exception from an ``error`` listener is only logged, so reporting can never recurse.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Final, Literal, Protocol, TypeAlias, TypedDict, get_args, overload

__all__ = [
    "EVENTS",
    "EventEmitter",
    "EventName",
    "JobAddedEvent",
    "JobFailedEvent",
    "JobIdEvent",
    "JobOutputEvent",
    "JobProgressEvent",
    "JobStatusEvent",
    "Listener",
    "Subscribe",
    "emitter_of",
]

log: logging.Logger = logging.getLogger("dataqueue.hooks")

EventName: TypeAlias = Literal[
    "job:added",
    "job:processing",
    "job:completed",
    "job:failed",
    "job:cancelled",
    "job:retried",
    "job:waiting",
    "job:progress",
    "job:output",
    "error",
]


class JobAddedEvent(TypedDict):
    """Payload of ``job:added`` (``created`` is False for an idempotency/unique hit)."""

    job_id: int
    job_type: str
    created: bool


class JobStatusEvent(TypedDict):
    """Payload of ``job:processing``, ``job:completed`` and ``job:waiting``."""

    job_id: int
    job_type: str


class JobFailedEvent(TypedDict):
    """Payload of ``job:failed``."""

    job_id: int
    job_type: str
    error: BaseException
    will_retry: bool


class JobIdEvent(TypedDict):
    """Payload of ``job:cancelled`` and ``job:retried``."""

    job_id: int


class JobProgressEvent(TypedDict):
    """Payload of ``job:progress``."""

    job_id: int
    progress: int


class JobOutputEvent(TypedDict):
    """Payload of ``job:output``."""

    job_id: int
    output: Any


#: Every event name a listener may subscribe to.
EVENTS: Final[frozenset[str]] = frozenset(get_args(EventName))

#: A listener receives the event payload; it may return a coroutine (``async def``).
Listener: TypeAlias = Callable[[Any], Any]


class Subscribe(Protocol):
    """The type of a queue's ``on`` / ``once``: ``(event, fn) -> fn``, where ``fn`` takes the
    payload of that event (so type checkers check a listener against its event)."""

    @overload
    def __call__(
        self, event: Literal["job:added"], fn: Callable[[JobAddedEvent], object]
    ) -> Listener: ...
    @overload
    def __call__(
        self, event: Literal["job:processing"], fn: Callable[[JobStatusEvent], object]
    ) -> Listener: ...
    @overload
    def __call__(
        self, event: Literal["job:completed"], fn: Callable[[JobStatusEvent], object]
    ) -> Listener: ...
    @overload
    def __call__(
        self, event: Literal["job:waiting"], fn: Callable[[JobStatusEvent], object]
    ) -> Listener: ...
    @overload
    def __call__(
        self, event: Literal["job:failed"], fn: Callable[[JobFailedEvent], object]
    ) -> Listener: ...
    @overload
    def __call__(
        self, event: Literal["job:cancelled"], fn: Callable[[JobIdEvent], object]
    ) -> Listener: ...
    @overload
    def __call__(
        self, event: Literal["job:retried"], fn: Callable[[JobIdEvent], object]
    ) -> Listener: ...
    @overload
    def __call__(
        self, event: Literal["job:progress"], fn: Callable[[JobProgressEvent], object]
    ) -> Listener: ...
    @overload
    def __call__(
        self, event: Literal["job:output"], fn: Callable[[JobOutputEvent], object]
    ) -> Listener: ...
    @overload
    def __call__(
        self, event: Literal["error"], fn: Callable[[BaseException], object]
    ) -> Listener: ...


class _Registration:
    """One subscription; ``once`` registrations remove themselves before their first call."""

    __slots__ = ("fn", "once")

    def __init__(self, fn: Listener, once: bool) -> None:
        self.fn = fn
        self.once = once


class EventEmitter:
    """Register listeners with :meth:`on` / :meth:`once`, remove them with :meth:`off`.

    Thread-safe: processors emit from worker threads while user code may (un)subscribe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, list[_Registration]] = {}
        # Strong references to scheduled listener tasks, so they are not garbage-collected
        # before they finish (asyncio only keeps weak references).
        self._tasks: set[asyncio.Task[Any]] = set()

    @staticmethod
    def _check(event: str) -> None:
        if event not in EVENTS:
            from dataqueue.errors import ConfigurationError

            raise ConfigurationError(f"unknown event {event!r}; known events: {sorted(EVENTS)}")

    @staticmethod
    def _check_fn(fn: Any) -> None:
        if not callable(fn):
            from dataqueue.errors import ConfigurationError

            raise ConfigurationError(f"a listener must be callable, got {fn!r}")

    def on(self, event: str, fn: Listener) -> Listener:
        """Call ``fn(payload)`` every time ``event`` is emitted; returns ``fn`` (decorator use)."""
        return self._add(event, fn, once=False)

    def once(self, event: str, fn: Listener) -> Listener:
        """Like :meth:`on`, but ``fn`` is removed before its first call."""
        return self._add(event, fn, once=True)

    def _add(self, event: str, fn: Listener, *, once: bool) -> Listener:
        self._check(event)
        self._check_fn(fn)
        with self._lock:
            self._listeners.setdefault(event, []).append(_Registration(fn, once))
        return fn

    def off(self, event: str, fn: Listener) -> None:
        """Remove one registration of ``fn`` for ``event`` (the latest); unknown ``fn``: no-op."""
        self._check(event)
        with self._lock:
            regs = self._listeners.get(event, [])
            for i in range(len(regs) - 1, -1, -1):
                if regs[i].fn == fn:
                    del regs[i]
                    break

    def remove_all_listeners(self, event: str | None = None) -> None:
        """Remove every listener of ``event``, or of every event when ``event`` is None."""
        with self._lock:
            if event is None:
                self._listeners.clear()
            else:
                self._check(event)
                self._listeners.pop(event, None)

    def listener_count(self, event: str) -> int:
        """How many listeners ``event`` has."""
        with self._lock:
            return len(self._listeners.get(event, ()))

    def wants(self, event: str) -> bool:
        """Whether ``event`` has a listener now (lets a hot path skip building a payload)."""
        return bool(self._listeners.get(event))

    def emit(self, event: str, payload: Any) -> None:
        """Call every listener of ``event`` with ``payload``; never raises."""
        if not self._listeners.get(event):  # one dict read (atomic): the worker's usual case
            return
        with self._lock:
            regs = list(self._listeners.get(event, ()))
            for reg in regs:
                if reg.once:
                    self._listeners[event].remove(reg)
        for reg in regs:
            self._call(event, reg.fn, payload)

    def _call(self, event: str, fn: Listener, payload: Any) -> None:
        try:
            result = fn(payload)
            if inspect.isawaitable(result):
                self._schedule(event, result)
        except Exception as exc:  # a listener must never break the emitter's caller
            self._report(event, exc)

    def _schedule(self, event: str, awaitable: Any) -> None:
        async def guarded() -> None:
            try:
                await awaitable
            except Exception as exc:
                self._report(event, exc)

        coro: Coroutine[Any, Any, None] = guarded()
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            # No loop in this thread (a sync queue): run the listener to completion here.
            asyncio.run(coro)
            return
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _report(self, event: str, exc: Exception) -> None:
        log.exception("listener for %r raised", event, exc_info=exc)
        if event != "error":
            self.emit("error", exc)


def emitter_of(queue: Any) -> EventEmitter:
    """The hooks of ``queue`` (so its processors and supervisors emit where the queue's
    listeners are), or a fresh emitter for an object without any."""
    emitter = getattr(queue, "_emitter", None)
    return emitter if isinstance(emitter, EventEmitter) else EventEmitter()
