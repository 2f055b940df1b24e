"""The handler context's I/O methods, written once: ``AsyncJobContext`` (for coroutine
handlers) in ``context_async.py``, and the blocking ``JobContext`` (for plain functions, run in a
worker thread) generated from it into ``context_sync.py`` by ``tools/gen_sync.py``.

Both call the coroutines of the shared ``dataqueue.worker.state.JobState`` on the worker's
event loop; everything without I/O lives in ``state.ContextBase``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from dataqueue.worker.state import (
    ContextBase,
    awaited,
    # sync: run_on_loop,
    wait_for_end,
    wait_until_end,
)

__all__ = ["AsyncJobContext"]  # sync: __all__ = ["JobContext"]

T = TypeVar("T")


class AsyncJobContext(ContextBase):  # sync: class JobContext(ContextBase):
    """Context of a coroutine handler: its I/O methods are coroutines."""

    __slots__ = ()

    async def _io(self, op: Coroutine[Any, Any, T]) -> T:
        # The state's coroutines run on the worker's loop: the asyncio twin awaits them, the
        # blocking twin hands them over from the handler's thread and waits for the result.
        return await op  # sync: return run_on_loop(self._state.loop, op)

    async def set_progress(self, progress: float) -> None:
        """Store the job's progress (0..100, rounded) and emit ``job:progress``."""
        await self._io(self._state.set_progress(progress))

    async def set_output(self, data: Any) -> None:
        """Store ``data`` as the job's output now (last call wins) and emit ``job:output``."""
        await self._io(self._state.set_output(data))

    async def run(self, step_name: str, fn: Callable[[], T | Awaitable[T]]) -> T:
        """Run ``fn`` once per job (an awaitable it returns is awaited): a completed step
        returns its stored result on re-runs."""
        done, cached = self._state.cached_step(step_name)
        if done:
            return cached  # type: ignore[no-any-return]
        result = fn()
        if inspect.isawaitable(result):
            result = await self._io(awaited(result))
        await self._io(self._state.store_step(step_name, result))
        return cast("T", result)  # an awaitable was awaited above

    async def parent_outputs(self) -> dict[int, Any]:
        """``{job_id: output}`` of this job's prerequisites (``depends_on.job_ids``; tag
        drains have no parents), read in one query/script. A prerequisite has completed
        before its dependent runs, so each output is what its handler returned or set."""
        return await self._io(self._state.parent_outputs())

    async def wait_for(
        self,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
        weeks: float = 0,
    ) -> None:
        """Park the job for the given duration (it does not hold a worker slot meanwhile)."""
        self._state.time_wait("duration", wait_for_end(seconds, minutes, hours, days, weeks))

    async def wait_until(self, when: datetime) -> None:
        """Park the job until the aware datetime ``when``."""
        self._state.time_wait("date", wait_until_end(when))

    async def create_token(
        self, timeout: str | int | float | timedelta | None = None, tags: Any = None
    ) -> str:
        """Create a wait token bound to this job (memoized: a re-run reuses the same token)."""
        return await self._io(self._state.create_token(timeout, tags))

    async def wait_for_token(self, token_id: str) -> dict[str, Any]:
        """Park until the token is completed or times out; returns ``{"ok": True, "output":
        ...}`` or ``{"ok": False, "error": lifecycle.MSG_TOKEN_TIMED_OUT}``."""
        return await self._io(self._state.wait_for_token(token_id))

    async def prolong(self, ms: float | None = None) -> None:
        """Re-arm the timeout to ``ms`` (default: the job's timeout) from now and renew the
        lease; for a job without a timeout it renews the lease only (a heartbeat)."""
        await self._io(self._state.prolong(ms))
