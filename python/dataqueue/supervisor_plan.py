"""What a supervisor run is, whichever twin runs it: its options, its result, and what a
failed task reports (``supervisor_async`` / ``supervisor_sync`` run it)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dataqueue.errors import ConfigurationError, DataQueueError
from dataqueue.hooks import EventEmitter
from dataqueue.lifecycle import (
    DEFAULT_CLEANUP_BATCH_SIZE,
    DEFAULT_CLEANUP_DAYS,
    DEFAULT_STUCK_MINUTES,
    DEFAULT_SUPERVISOR_INTERVAL,
)
from dataqueue.lifecycle import MAX_DAYS_TO_KEEP as MAX_DAYS

__all__ = [
    "SupervisorOptions",
    "SupervisorResult",
    "finish_run",
    "parse_supervisor_options",
    "report_failure",
    "sleep_unless_set",
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
    """A supervisor's validated options (see ``create_supervisor``)."""

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


def report_failure(
    opts: SupervisorOptions, hooks: EventEmitter, task: str, exc: BaseException
) -> None:
    """A task failed: log it, emit ``error`` and call ``on_error`` (the other tasks still run)."""
    if not isinstance(exc, Exception):
        exc = DataQueueError(repr(exc))
    log.error("supervisor task %s failed: %s", task, exc, exc_info=opts.verbose)
    hooks.emit("error", exc)
    if opts.on_error is not None:
        try:
            result = opts.on_error(exc)
            if inspect.iscoroutine(result):
                result.close()
                log.warning("supervisor on_error must be a plain function")
        except Exception as inner:
            log.exception("supervisor on_error raised", exc_info=inner)


def finish_run(opts: SupervisorOptions, result: SupervisorResult) -> SupervisorResult:
    """The end of a run: logged when ``verbose``."""
    if opts.verbose:
        log.info("supervisor run: %s", result)
    return result


async def sleep_unless_set(event: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``event`` is set meanwhile."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
