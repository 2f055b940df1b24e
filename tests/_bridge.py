"""Drive asyncio objects from synchronous test code, so one test body covers both twins.

``LoopThread`` runs one event loop on a background thread. ``AsyncBridge(obj, loop)`` is a proxy
whose methods run on that loop and return plain results: coroutine methods are awaited there,
plain methods are called there (so they may use ``asyncio.get_running_loop()``), and results
that are themselves asyncio objects (a backend, a psycopg ``AsyncConnection``/``AsyncCursor``)
come back bridged. Bridged arguments are unwrapped before the call, so a bridged connection can
be passed as ``db=``. ``with bridge:`` maps to ``async with``.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Seconds a bridged call may take before the test fails instead of hanging.
CALL_TIMEOUT = 60.0


class LoopThread:
    """An event loop running forever on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="bridge-loop", daemon=True
        )
        self._thread.start()

    def run(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` on the loop and return its result (exceptions propagate)."""

        async def _await() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(_await(), self.loop).result(CALL_TIMEOUT)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a plain function on the loop's thread and return its result."""

        async def _call() -> T:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(_call(), self.loop).result(CALL_TIMEOUT)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


_ASYNC_TYPES: dict[type, bool] = {}


def _has_async_api(obj: Any) -> bool:
    """Whether ``obj``'s class has coroutine methods (then it is returned bridged)."""
    cls = type(obj)
    if cls not in _ASYNC_TYPES:
        if cls.__module__ == "builtins" or not hasattr(cls, "__dict__"):
            _ASYNC_TYPES[cls] = False
        else:
            _ASYNC_TYPES[cls] = any(
                inspect.iscoroutinefunction(getattr(cls, name, None))
                for name in dir(cls)
                if not name.startswith("__") or name == "__aenter__"
            )
    return _ASYNC_TYPES[cls]


def unwrap(value: Any) -> Any:
    """The real object behind a bridge (anything else unchanged)."""
    if isinstance(value, AsyncBridge):
        return object.__getattribute__(value, "_target")
    return value


class AsyncBridge:
    """Synchronous proxy of an asyncio object; see the module docstring."""

    def __init__(self, target: Any, loop: LoopThread) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_loop", loop)

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, AsyncBridge) or value is None:
            return value
        if _has_async_api(value):
            return AsyncBridge(value, object.__getattribute__(self, "_loop"))
        return value

    def __getattr__(self, name: str) -> Any:
        target = object.__getattribute__(self, "_target")
        loop: LoopThread = object.__getattribute__(self, "_loop")
        value = getattr(target, name)
        if not callable(value) or inspect.isclass(value):
            return self._wrap(value)

        def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple(unwrap(a) for a in args)
            kwargs = {k: unwrap(v) for k, v in kwargs.items()}
            result = loop.call(value, *args, **kwargs)
            if inspect.isawaitable(result):
                result = loop.run(result)
            return self._wrap(result)

        call.__name__ = name
        call.__doc__ = getattr(value, "__doc__", None)
        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_target"), name, unwrap(value))

    def __enter__(self) -> AsyncBridge:
        loop: LoopThread = object.__getattribute__(self, "_loop")
        loop.run(object.__getattribute__(self, "_target").__aenter__())
        return self

    def __exit__(self, *exc: Any) -> Any:
        loop: LoopThread = object.__getattribute__(self, "_loop")
        return loop.run(object.__getattribute__(self, "_target").__aexit__(*exc))

    def __repr__(self) -> str:
        return f"<AsyncBridge of {object.__getattribute__(self, '_target')!r}>"
