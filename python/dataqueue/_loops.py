"""An ``AsyncJobQueue`` belongs to one event loop (sans-IO helpers for ``queue_async.py``).

Its pool or client holds sockets of the loop it was created on; used from another loop they
fail half-way (on Redis after the job was written). So the queue refuses, before it touches the
storage, to run on another loop, and ``close()`` releases what it can from any loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from dataqueue.errors import ConfigurationError

__all__ = ["check_loop", "close_on_owner_loop", "running_loop"]

log = logging.getLogger("dataqueue.queue")


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def check_loop(owner: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop | None:
    """The queue's loop after this call (bound on first use); raise ``ConfigurationError``
    when a coroutine of the queue runs on another loop than the one it belongs to."""
    loop = running_loop()
    if loop is None or owner is None or owner is loop:
        return owner or loop
    state = "has closed" if owner.is_closed() else "is another one"
    raise ConfigurationError(
        f"this AsyncJobQueue belongs to the event loop it was created on, which {state}; "
        "create the queue inside the loop (e.g. the asyncio.run) that uses it"
    )


async def close_on_owner_loop(
    owner: asyncio.AbstractEventLoop | None, close: Callable[[], Awaitable[Any]]
) -> None:
    """Run ``close()`` on the owner loop when it runs in another thread; else here, where a
    resource of a finished loop cannot be closed gracefully and is left to be collected."""
    loop = running_loop()
    if owner is None or owner is loop:
        await close()
        return
    if owner.is_running() and not owner.is_closed():
        future = asyncio.run_coroutine_threadsafe(_call(close), owner)
        await asyncio.wrap_future(future)
        return
    try:
        await close()
    except (RuntimeError, OSError) as exc:  # sockets of a closed loop
        log.debug("close() from another event loop: %s", exc)


async def _call(close: Callable[[], Awaitable[Any]]) -> None:
    await close()
