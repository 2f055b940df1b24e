"""``force_kill_on_timeout``: run a handler in a child process that is SIGKILLed at the timeout.

The handler is sent to a fresh ``spawn`` process by reference (pickle stores its module and
qualified name), so it must be a module-level function importable in a new interpreter; closures,
lambdas and ``<locals>`` functions are rejected with a clear error. The child runs it with a
:class:`ForceKillContext`; messages (progress, output, step results, the return value) come back
over a pipe. Limits of the child's ``ctx``: ``set_progress``, ``set_output`` and ``run`` work
(forwarded to the worker), ``cancelled`` is never set (the process is killed instead), and waits,
tokens, ``prolong`` and ``on_timeout`` raise — a force-killed job has a hard deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import multiprocessing.connection
import pickle
import threading
import traceback
from collections.abc import Callable
from typing import Any

from dataqueue.errors import DataQueueError
from dataqueue.worker.context import JobState, check_progress, step_completed

__all__ = ["ForceKillContext", "HandlerProcessError", "JobTimeoutError", "run_force_killed"]

#: How long the child may take to start (interpreter + imports) before the timeout is armed.
STARTUP_LIMIT_SECONDS = 60.0


class JobTimeoutError(DataQueueError, TimeoutError):
    """A handler ran past its ``timeout_ms``. A ``TimeoutError``, so ``retry_on=(TimeoutError,)``
    retries timed-out attempts and ``dont_retry_on=(TimeoutError,)`` ends them."""

    def __init__(self, ms: int, *, killed: bool = False) -> None:
        text = f"Job timed out after {ms} ms"
        if killed:
            text += " and was forcefully terminated"
        super().__init__(text)
        self.ms = ms
        self.killed = killed


class HandlerProcessError(DataQueueError):
    """A force-kill handler raised in its child process, or the child died."""


class _NoCancel:
    """``ctx.cancelled`` in the child: never set (the parent kills the process instead)."""

    def is_set(self) -> bool:
        return False

    def __bool__(self) -> bool:
        return False

    def wait_blocking(self, timeout: float | None = None) -> bool:
        threading.Event().wait(timeout)
        return False

    async def wait(self) -> None:
        await asyncio.Event().wait()


class ForceKillContext:
    """The limited ``ctx`` of a force-kill handler (see the module docstring)."""

    def __init__(self, meta: dict[str, Any], conn: multiprocessing.connection.Connection) -> None:
        self.job_id: int = meta["job_id"]
        self.job_type: str = meta["job_type"]
        self.attempt: int = meta["attempt"]
        self.payload: Any = meta["payload"]
        self.cancelled: _NoCancel = _NoCancel()
        self._steps: dict[str, Any] = dict(meta.get("step_data") or {})
        self._conn = conn

    def set_progress(self, progress: float) -> None:
        """Report progress (0-100), forwarded to the worker."""
        check_progress(progress)
        self._conn.send(("progress", progress))

    def set_output(self, data: Any) -> None:
        """Store ``data`` as the job's output, forwarded to the worker."""
        self._conn.send(("output", data))

    def run(self, step_name: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` once per job as step ``step_name``; a retry reuses its stored result."""
        entry = self._steps.get(step_name)
        if step_completed(entry):
            return entry.get("result")
        result = fn()
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        self._steps[step_name] = {"__completed": True, "result": result}
        self._conn.send(("step", step_name, result))
        return result

    def _unavailable(self, *args: Any, **kwargs: Any) -> Any:
        """Unavailable with ``force_kill_on_timeout`` (a hard deadline): raises DataQueueError."""
        raise DataQueueError(
            "waits, tokens, prolong and on_timeout are unavailable with force_kill_on_timeout"
        )

    wait_for: Callable[..., Any] = _unavailable
    wait_until: Callable[..., Any] = _unavailable
    create_token: Callable[..., Any] = _unavailable
    wait_for_token: Callable[..., Any] = _unavailable
    prolong: Callable[..., Any] = _unavailable
    on_timeout: Callable[..., Any] = _unavailable


async def _await(value: Any) -> Any:
    return await value


def _child_main(
    fn: Callable[..., Any], meta: dict[str, Any], conn: multiprocessing.connection.Connection
) -> None:
    """Entry point of the child process."""
    conn.send(("ready",))
    ctx = ForceKillContext(meta, conn)
    try:
        result = fn(meta["payload"], ctx)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        conn.send(("result", result))
    except BaseException as exc:
        text = str(exc) or type(exc).__name__
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        conn.send(("error", type(exc).__name__, text, _portable(exc), tb))
    finally:
        conn.close()


def _portable(exc: BaseException) -> bytes | None:
    """The pickled exception, or None when it cannot be pickled. Whether it can be rebuilt
    is the parent's to find out (``_restore``)."""
    if not isinstance(exc, Exception):
        return None
    try:
        return pickle.dumps(exc)
    except Exception:
        return None


def _restore(data: bytes | None) -> Exception | None:
    """The child's exception rebuilt, or None (unpicklable, or not rebuilt from its args):
    the parent then reports its type and message."""
    if data is None:
        return None
    try:
        exc = pickle.loads(data)
    except Exception:
        return None
    return exc if isinstance(exc, Exception) else None


def check_importable(fn: Callable[..., Any]) -> None:
    """Raise ``HandlerProcessError`` unless ``fn`` can be sent to a new process by reference."""
    qualname = getattr(fn, "__qualname__", "")
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise HandlerProcessError(
            f"force_kill_on_timeout needs a module-level handler importable by module path; "
            f"{getattr(fn, '__module__', '?')}.{qualname} is not"
        )
    try:
        pickle.dumps(fn)
    except Exception as exc:
        raise HandlerProcessError(
            f"force_kill_on_timeout needs a handler importable by module path: {exc}"
        ) from None


async def _readable(conn: multiprocessing.connection.Connection, timeout: float | None) -> bool:
    """Wait until ``conn`` has data (or EOF) without blocking the event loop."""
    if conn.poll(0):
        return True
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await asyncio.wait_for(asyncio.shield(fut), timeout)
        return True
    except asyncio.TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


async def run_force_killed(fn: Callable[..., Any], state: JobState) -> Any:
    """Run ``fn`` for ``state.job`` in a killable child process; return its result."""
    check_importable(fn)
    job = state.job
    timeout_ms = int(job.timeout_ms or 0)
    meta = {
        "job_id": job.id,
        "job_type": job.job_type,
        "attempt": job.attempts,
        "payload": job.payload,
        "step_data": state.step_data,
    }
    mp = multiprocessing.get_context("spawn")
    parent, child = mp.Pipe(duplex=False)
    proc = mp.Process(target=_child_main, args=(fn, meta, child), daemon=True)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, proc.start)
    finally:
        child.close()
    deadline: float | None = None
    limit = loop.time() + STARTUP_LIMIT_SECONDS
    try:
        while True:
            end = deadline if deadline is not None else limit
            remaining = end - loop.time()
            if remaining <= 0 or not await _readable(parent, remaining):
                if deadline is None:
                    raise HandlerProcessError("the handler process did not start in time")
                state.cancelled.set("timeout")
                raise JobTimeoutError(timeout_ms, killed=True)
            try:
                msg = parent.recv()
            except EOFError:
                await loop.run_in_executor(None, proc.join, 5.0)
                raise HandlerProcessError(
                    f"the handler process exited with code {proc.exitcode} before returning"
                ) from None
            kind = msg[0]
            if kind == "ready":
                deadline = loop.time() + timeout_ms / 1000.0
            elif kind == "progress":
                await state.set_progress(msg[1])
            elif kind == "output":
                await state.set_output(msg[1])
            elif kind == "step":
                await state.store_step(msg[1], msg[2])
            elif kind == "result":
                return msg[1]
            elif kind == "error":
                original = _restore(msg[3])
                if original is not None:
                    # the handler's own exception, so the retry policy (retry_on, NonRetryable,
                    # Retry(after=...)) sees its class; the child's traceback as its cause
                    raise original from HandlerProcessError(f"in the handler process:\n{msg[4]}")
                raise HandlerProcessError(
                    f"{msg[2]}" if msg[1] == "HandlerProcessError" else f"{msg[1]}: {msg[2]}"
                )
    finally:
        if proc.is_alive():
            proc.kill()  # SIGKILL: the handler cannot ignore it
        await loop.run_in_executor(None, proc.join, 5.0)
        parent.close()
