"""A small thread pool of daemon threads for plain ``def`` handlers.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit, so one handler
that ignores ``ctx.cancelled`` would keep a SIGTERM'd worker process alive until it returns.
Handler threads here are daemons: once the processor has given up on them (their jobs are left
for lease reclaim), the process can exit.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["DaemonThreadPool"]

T = TypeVar("T")

_Item = tuple["concurrent.futures.Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonThreadPool(concurrent.futures.Executor):
    """At most ``max_workers`` daemon threads, started on demand."""

    def __init__(self, max_workers: int, name: str = "dataqueue-handler") -> None:
        self._max = max_workers
        self._name = name
        self._work: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._closed = False

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a closed pool")
            self._work.put((future, fn, args, kwargs))
            if self._idle > 0:
                self._idle -= 1  # an idle thread takes it
            elif self._threads < self._max:
                self._threads += 1
                threading.Thread(
                    target=self._run, name=f"{self._name}-{self._threads}", daemon=True
                ).start()
        return future

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # WaitSignal is a BaseException
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del item, future, fn, args, kwargs
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Let the threads end after their current call (``wait`` is not supported: a
        handler thread may never return)."""
        with self._lock:
            self._closed = True
            for _ in range(self._threads):
                self._work.put(None)
