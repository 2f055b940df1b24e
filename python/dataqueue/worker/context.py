"""The ``ctx`` object handed to job handlers.

``async def`` handlers get an :class:`AsyncJobContext` whose I/O methods are coroutines;
plain ``def`` handlers (run in the worker's thread pool) get a :class:`JobContext` with the same
methods, blocking (generated from the async one: ``context_async.py`` → ``context_sync.py``).
Both share one :class:`JobState` owned by the processor (``dataqueue.worker.state``).

Durable waits are positional: the N-th wait call of an invocation uses the step-data key
``__wait_N`` (tokens minted with ``create_token`` use ``__token_N``), so a re-invoked handler
replays its earlier waits as already done. Changing the order of wait calls in a handler breaks
jobs that are waiting at deploy time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from dataqueue.worker.context_async import AsyncJobContext
from dataqueue.worker.context_sync import JobContext
from dataqueue.worker.state import (
    CancelToken,
    JobState,
    WaitSignal,
    check_progress,
    step_completed,
)

__all__ = [
    "AsyncHandler",
    "AsyncJobContext",
    "CancelToken",
    "Handler",
    "JobContext",
    "JobState",
    "SyncHandler",
    "WaitSignal",
    "check_progress",
    "step_completed",
]

#: A plain ``def`` handler: ``fn(payload, ctx)`` runs in a worker thread; its return value
#: (JSON) is stored as the job's output.
SyncHandler: TypeAlias = Callable[[Any, JobContext], object]
#: An ``async def`` handler: ``await fn(payload, ctx)`` runs on the worker's event loop.
AsyncHandler: TypeAlias = Callable[[Any, AsyncJobContext], Awaitable[object]]
#: What ``create_processor`` accepts per job type.
Handler: TypeAlias = SyncHandler | AsyncHandler
