"""Helpers around one handler invocation: retry delays, transient errors, error messages."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dataqueue import _core
from dataqueue.errors import BackendError

__all__ = [
    "error_message",
    "is_transient",
    "retry_delay",
    "with_retries",
    "with_retries_blocking",
]

log: logging.Logger = logging.getLogger("dataqueue.worker")

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


async def with_retries(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    attempts: int = 6,
    first_delay: float = 0.05,
    max_delay: float = 2.0,
    budget: float | None = None,
    **kwargs: Any,
) -> T:
    """Call ``await fn(*args)``, retrying transient errors with exponential backoff.

    Without ``budget`` it makes at most ``attempts`` tries (~1.5 s of waiting by default);
    with ``budget`` it keeps trying for that many seconds instead (and at least twice), e.g.
    as long as the caller's lease lasts, so a server restart does not drop the call.
    """
    loop = asyncio.get_running_loop()
    end = None if budget is None else loop.time() + max(0.0, budget)
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc):
                raise
            if end is None:
                if attempt >= attempts:
                    raise
                wait = delay
            else:
                left = end - loop.time()
                if left <= 0 and attempt >= 2:
                    raise
                wait = max(0.0, min(delay, left))
            log.debug("transient backend error (%s); retrying in %.2fs", exc, wait)
            await asyncio.sleep(wait)
            delay = min(max_delay, delay * 2)


def with_retries_blocking(
    fn: Callable[..., T],
    *args: Any,
    attempts: int = 6,
    first_delay: float = 0.05,
    max_delay: float = 2.0,
    **kwargs: Any,
) -> T:
    """:func:`with_retries` for blocking callables (the sync supervisor)."""
    delay = first_delay
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if attempt == attempts - 1 or not is_transient(exc):
                raise
            # DEBUG: the caller reports what still fails (a claim outage: once, then every 30 s)
            log.debug("transient backend error (%s); retrying in %.2fs", exc, delay)
            time.sleep(delay)
            delay = min(max_delay, delay * 2)
    raise AssertionError("unreachable")  # pragma: no cover


def error_message(exc: BaseException) -> str:
    """The text stored in a job's error history."""
    text = str(exc)
    return text if text else type(exc).__name__
