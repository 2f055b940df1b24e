"""Helpers around one handler invocation: retry delays, transient errors, error messages."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dataqueue import _core
from dataqueue.errors import BackendError
from dataqueue.worker.joblog import log

__all__ = [
    "RetrySchedule",
    "error_message",
    "is_transient",
    "retry_delay",
    "with_retries",
    "with_retries_blocking",
]


T = TypeVar("T")


def retry_delay(
    attempts: int,
    retry_delay: int | None,
    retry_backoff: bool | None,
    retry_delay_max: int | None,
) -> float:
    """Seconds until the next attempt (SPEC §5), computed by the Rust core."""
    return float(_core.retry_delay_seconds(attempts, retry_delay, retry_backoff, retry_delay_max))


def _transient_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [BackendError, ConnectionError, TimeoutError, OSError]
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        types.append(psycopg.OperationalError)
    pool = sys.modules.get("psycopg_pool")
    if pool is not None:
        types.append(pool.PoolTimeout)
    rexc = sys.modules.get("redis.exceptions")
    if rexc is not None:
        types.extend([rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError])
    return tuple(types)


def is_transient(exc: BaseException) -> bool:
    """Whether a backend error is worth retrying (a dropped connection, a failover...)."""
    return isinstance(exc, _transient_types())


class RetrySchedule:
    """When a call that failed transiently is tried again: delays doubling from
    ``first_delay`` up to ``max_delay``. Sans-IO: ``clock`` tells the time, the caller sleeps.

    Without ``budget`` it allows ``attempts`` tries (~1.5 s of waiting by default); with
    ``budget`` as many as fit in that many seconds from now (and at least two), e.g. as long
    as the caller's lease lasts, so a server restart does not drop the call.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        budget: float | None = None,
        *,
        attempts: int = 6,
        first_delay: float = 0.05,
        max_delay: float = 2.0,
    ) -> None:
        self._clock = clock
        self._end = None if budget is None else clock() + max(0.0, budget)
        self._attempts = attempts
        self._delay = first_delay
        self._max_delay = max_delay
        self._tries = 1

    def next_wait(self, exc: Exception) -> float | None:
        """Seconds to wait before the next try after a try failed with ``exc``; None: give up
        (``exc`` is not transient, or no tries are left)."""
        if not is_transient(exc):
            return None
        if self._end is None:
            if self._tries >= self._attempts:
                return None
            wait = self._delay
        else:
            left = self._end - self._clock()
            if left <= 0 and self._tries >= 2:
                return None
            wait = max(0.0, min(self._delay, left))
        self._tries += 1
        self._delay = min(self._max_delay, self._delay * 2)
        # DEBUG: the caller reports what still fails (a claim outage: once, then every 30 s)
        log.debug("transient backend error (%s); retrying in %.2fs", exc, wait)
        return wait


async def with_retries(
    fn: Callable[..., Awaitable[T]], *args: Any, budget: float | None = None, **kwargs: Any
) -> T:
    """Call ``await fn(*args, **kwargs)``, retrying transient errors (:class:`RetrySchedule`)."""
    schedule = RetrySchedule(asyncio.get_running_loop().time, budget)
    while True:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            if (wait := schedule.next_wait(exc)) is None:
                raise
            await asyncio.sleep(wait)


def with_retries_blocking(
    fn: Callable[..., T], *args: Any, budget: float | None = None, **kwargs: Any
) -> T:
    """:func:`with_retries` for blocking callables (the sync supervisor)."""
    schedule = RetrySchedule(time.monotonic, budget)
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if (wait := schedule.next_wait(exc)) is None:
                raise
            time.sleep(wait)


def error_message(exc: BaseException) -> str:
    """The text stored in a job's error history."""
    text = str(exc)
    return text if text else type(exc).__name__
