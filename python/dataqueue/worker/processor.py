"""Processors: run handlers for a queue's jobs (``queue.create_processor(handlers, ...)``).

``AsyncProcessor`` (for an ``AsyncJobQueue``) runs on the caller's event loop. ``Processor`` (for
a blocking ``JobQueue``) owns a private event loop on a daemon thread and talks to the same
storage through an asyncio backend built from the queue's settings; its methods block.

Options (``create_processor``): ``worker_id`` (default ``worker-`` + 7 random chars),
``batch_size`` 10 (most jobs per claim), ``concurrency`` 3 (jobs in flight), ``group_concurrency``
(global cap of processing jobs per group), ``poll_interval`` 5.0 s (fallback wake-up and cron
tick; idle workers are woken by the backend within milliseconds), ``job_type`` (str or list),
``on_error`` (called with errors outside job outcomes), ``verbose``, ``lease_seconds`` 30 (a dead
worker's jobs are reclaimable after this), ``heartbeat_interval`` (default lease/3),
``shutdown_grace`` 30 s (SIGINT/SIGTERM: how long running handlers get after ``ctx.cancelled``),
``claim_all_types`` False (by default a processor claims only the job types it has handlers
for, narrowed further by ``job_type``; True claims every type and fails those without a
handler with ``no_handler``), ``give_up_after`` None (seconds the backend may stay unreachable
before ``run()`` raises ``BackendError``; None retries forever — ``dataqueue worker`` defaults to
300 s). A misconfiguration found by the first claim (wrong password, missing database) ends
``run()`` at once with its ``ConfigurationError``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar, cast

from dataqueue._typing import Unpack
from dataqueue.backends.base_async import AsyncBackend
from dataqueue.errors import ConfigurationError
from dataqueue.hooks import emitter_of
from dataqueue.lifecycle import DEFAULT_STOP_TIMEOUT
from dataqueue.worker.engine import (
    Engine,
    ProcessorKwargs,
    ProcessorOptions,
    check_handlers,
    claim_types_for,
    parse_options,
)
from dataqueue.worker.joblog import log

__all__ = ["AsyncProcessor", "Processor", "create_processor"]


T = TypeVar("T")


def _signals() -> tuple[signal.Signals, ...]:
    return (signal.SIGINT, signal.SIGTERM)


class AsyncProcessor:
    """A processor on the running event loop. Build it with ``queue.create_processor``."""

    def __init__(
        self,
        backend: AsyncBackend,
        hooks: Any,
        handlers: Mapping[str, Callable[..., Any]],
        options: ProcessorOptions,
    ) -> None:
        self._engine = Engine(backend, hooks, handlers, options)
        self._task: asyncio.Task[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None

    @property
    def worker_id(self) -> str:
        """The id written to ``locked_by`` of the jobs this processor claims."""
        return self._engine.worker_id

    async def start(self) -> int:
        """Enqueue due cron jobs, claim one batch, process it; return how many were claimed."""
        return await self._engine.run_once()

    async def run(self, *, handle_signals: bool = True) -> None:
        """Process jobs until :meth:`stop` (or SIGINT/SIGTERM when ``handle_signals`` and this
        is the main thread: stop claiming, set ``ctx.cancelled``, wait ``shutdown_grace``)."""
        loop = asyncio.get_running_loop()
        self._shutdown_task = None
        # Begun before the signal handlers exist and with no await in between, so a signal
        # always finds the run it must stop.
        run = self._engine.begin()
        installed: dict[signal.Signals, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in _signals():
                previous = signal.getsignal(sig)
                try:
                    loop.add_signal_handler(sig, self._on_signal)
                    installed[sig] = previous
                except (NotImplementedError, RuntimeError, ValueError):
                    break
        try:
            if run is not None:
                await self._engine.run_loop(run)
            elif self._task is not None:  # already running in the background: wait for it
                await asyncio.gather(self._task, return_exceptions=True)
            if self._shutdown_task is not None:
                await self._shutdown_task
            await self._engine.close()
            if self._engine.fatal is not None:
                raise self._engine.fatal
        finally:
            for sig, previous in installed.items():
                loop.remove_signal_handler(sig)
                # asyncio resets to the default action; give back the application's handler
                if previous is not None:
                    signal.signal(sig, previous)

    run_async = run

    def _on_signal(self) -> None:
        self._engine.stop()  # at once: the shutdown task below starts a moment later
        if self._shutdown_task is None:
            log.info("processor %s: shutting down (signal)", self.worker_id)
            self._shutdown_task = asyncio.get_running_loop().create_task(self._engine.shutdown())
        else:  # a second signal: give up waiting
            log.info("processor %s: second signal, leaving running jobs", self.worker_id)
            self._engine.cancel_running()
            self._shutdown_task = asyncio.get_running_loop().create_task(self._drain_now())

    async def _drain_now(self) -> None:
        await self._engine.drain(0)

    def start_in_background(self) -> None:
        """Start the continuous loop as a task on the running loop (no signal handling);
        no-op if already running. :meth:`is_running` is True as soon as this returns."""
        task = self._engine.start_background()
        if task is not None:
            self._task = task

    def stop(self) -> None:
        """Stop claiming new jobs; running handlers finish on their own. Takes effect even
        when called right after :meth:`start_in_background`, before the loop got to run."""
        self._engine.stop()

    async def stop_and_drain(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop, then wait up to ``timeout`` s for running jobs; what still runs afterwards is
        abandoned (``ctx.cancelled`` set; the job stays ``processing`` until its lease
        expires and it is reclaimed)."""
        self._engine.stop()
        await self._engine.drain(timeout)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._engine.close()

    async def shutdown(self, grace: float | None = None) -> None:
        """What SIGTERM does: stop, set ``ctx.cancelled`` of running jobs, wait ``grace``."""
        await self._engine.shutdown(grace)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._engine.close()

    def is_running(self) -> bool:
        """Whether the continuous loop is running."""
        return self._engine.is_running()

    @property
    def claim_types(self) -> tuple[str, ...] | None:
        """The job types this processor claims (None: every type)."""
        return self._engine.claim_types


class _LoopThread:
    """A private event loop on a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


async def _finished(task: asyncio.Task[None]) -> None:
    """Wait for ``task`` (on its own loop) without raising what it raised (reported already)."""
    await asyncio.gather(task, return_exceptions=True)


def _wait(fut: concurrent.futures.Future[T]) -> T:
    """Block on ``fut`` in short slices, so the main thread keeps handling signals."""
    while True:
        try:
            return fut.result(timeout=0.2)
        except concurrent.futures.TimeoutError:
            continue


class Processor:
    """A blocking processor for a ``JobQueue``; its event loop runs on a private thread."""

    def __init__(
        self,
        backend_factory: Callable[[], AsyncBackend],
        owns_backend: bool,
        hooks: Any,
        handlers: Mapping[str, Callable[..., Any]],
        options: ProcessorOptions,
    ) -> None:
        self._factory = backend_factory
        self._owns_backend = owns_backend
        self._hooks = hooks
        self._handlers = dict(handlers)
        self._options = options
        self._runner: _LoopThread | None = None
        self._engine: Engine | None = None
        self._backend: AsyncBackend | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._signalled = 0

    @property
    def worker_id(self) -> str:
        """The id written to ``locked_by`` of the jobs this processor claims."""
        return self._options.worker_id

    @property
    def claim_types(self) -> tuple[str, ...] | None:
        """The job types this processor claims (None: every type)."""
        return claim_types_for(self._options, self._handlers)

    def _ensure(self) -> tuple[_LoopThread, Engine]:
        with self._lock:
            if self._runner is None or self._engine is None:
                runner = _LoopThread(f"dataqueue-{self._options.worker_id}")

                async def setup() -> Engine:
                    self._backend = self._factory()
                    return Engine(self._backend, self._hooks, self._handlers, self._options)

                self._engine = runner.submit(setup()).result()
                self._runner = runner
            return self._runner, self._engine

    def start(self) -> int:
        """Enqueue due cron jobs, claim one batch, process it; return how many were claimed."""
        runner, engine = self._ensure()
        return _wait(runner.submit(engine.run_once()))

    def start_in_background(self) -> None:
        """Run the continuous loop on the processor's thread; no-op if already running.
        :meth:`is_running` is True as soon as this returns."""
        runner, engine = self._ensure()

        async def begin() -> asyncio.Task[None] | None:
            return engine.start_background()

        task = _wait(runner.submit(begin()))
        if task is not None:
            self._loop_task = task

    def run(self, *, handle_signals: bool = True) -> None:
        """Process jobs until :meth:`stop` or SIGINT/SIGTERM (graceful: stop claiming, set
        ``ctx.cancelled``, wait ``shutdown_grace``; a second signal stops waiting)."""
        self._signalled = 0
        self._shutdown_future = None
        previous: dict[signal.Signals, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in _signals():
                previous[sig] = signal.signal(sig, self._on_signal)
        shutdown: concurrent.futures.Future[None] | None = None
        try:
            runner, engine = self._ensure()

            async def begin() -> asyncio.Task[None] | None:
                return engine.start_background() or self._loop_task

            task = _wait(runner.submit(begin()))
            if self._signalled:  # a signal during start-up, before the run existed
                engine.stop()
            if task is not None:
                self._loop_task = task
                _wait(runner.submit(_finished(task)))
            while True:  # a signal may have started a shutdown: wait for it
                shutdown = self._shutdown_future
                if shutdown is None:
                    break
                _wait(shutdown)
                if shutdown is self._shutdown_future:
                    break
            _wait(runner.submit(engine.close()))
            if engine.fatal is not None:
                raise engine.fatal
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    _shutdown_future: concurrent.futures.Future[None] | None = None

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signalled += 1
        runner, engine = self._runner, self._engine
        if runner is None or engine is None:
            return  # still starting: run() stops the run once it exists
        engine.stop()  # thread-safe, at once
        if self._signalled == 1:
            log.info("processor %s: shutting down (signal %d)", self.worker_id, signum)
            self._shutdown_future = runner.submit(engine.shutdown())
        else:
            log.info("processor %s: second signal, leaving running jobs", self.worker_id)

            async def now() -> None:
                engine.cancel_running()
                await engine.drain(0)

            self._shutdown_future = runner.submit(now())

    def stop(self) -> None:
        """Stop claiming new jobs; running handlers finish on their own. Takes effect even
        when called right after :meth:`start_in_background`, before the loop got to run."""
        engine = self._engine
        if engine is not None:
            engine.stop()

    def stop_and_drain(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop, then wait up to ``timeout`` s for running jobs (see AsyncProcessor)."""
        runner, engine = self._runner, self._engine
        if runner is None or engine is None:
            return
        engine.stop()
        _wait(runner.submit(engine.drain(timeout)))
        task = self._loop_task
        if task is not None:
            _wait(runner.submit(_finished(task)))
            self._loop_task = None
        _wait(runner.submit(engine.close()))

    def is_running(self) -> bool:
        """Whether the continuous loop is running."""
        return self._engine is not None and self._engine.is_running()

    def close(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop and drain, close the backend this processor opened, end its thread."""
        if self._runner is None:
            return
        self.stop_and_drain(timeout)
        runner = self._runner
        backend = self._backend
        if backend is not None and self._owns_backend:
            try:
                _wait(runner.submit(backend.close()))
            except Exception as exc:  # closing is best-effort
                log.warning("processor %s: closing its backend failed: %s", self.worker_id, exc)
        runner.stop()
        self._runner = None
        self._engine = None
        self._backend = None

    def __enter__(self) -> Processor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def create_processor(
    queue: Any, handlers: Any, **options: Unpack[ProcessorKwargs]
) -> Processor | AsyncProcessor:
    """Build the processor for ``queue``: an ``AsyncProcessor`` for an ``AsyncJobQueue``, a
    blocking ``Processor`` for a ``JobQueue`` (see the module docstring for the options)."""
    checked = check_handlers(handlers)
    parsed = parse_options(**options)
    if parsed.verbose:
        from dataqueue.config import enable_verbose_logging

        enable_verbose_logging()
    hooks = emitter_of(queue)
    backend = getattr(queue, "_backend", None)
    if isinstance(backend, AsyncBackend):
        return AsyncProcessor(backend, hooks, checked, parsed)
    return Processor(_async_backend_factory(queue), True, hooks, checked, parsed)


def _async_backend_factory(queue: Any) -> Callable[[], AsyncBackend]:
    """How a blocking queue's processor gets an asyncio backend for the same storage.

    Preferred: the sync backend's settings ``async_twin()`` (keeps the caller's connection
    parameters, drops a caller's sync pool/client, which an asyncio backend cannot use).
    """
    backend = getattr(queue, "_backend", None)
    settings = getattr(backend, "settings", None)
    twin = getattr(settings, "async_twin", None)
    name = getattr(backend, "name", None)
    if twin is not None and name in ("postgres", "redis"):

        def build() -> AsyncBackend:
            from dataqueue.config import backend_class

            return cast(AsyncBackend, backend_class(name, "async")(twin()))

        return build
    config = getattr(queue, "_config", None)
    if config is None or not hasattr(config, "build_async"):
        raise ConfigurationError(
            "this queue cannot create a processor: it has neither an asyncio backend nor the "
            "settings to build one"
        )
    return config.build_async  # type: ignore[no-any-return]
