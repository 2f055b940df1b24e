"""Deterministic fault injection at one exact point of a backend call (test-only).

``Faulty(backend)`` delegates every attribute to a real asyncio backend; a method listed in
``faults`` runs through an injector instead, which decides per call what happens:

- ``"before"``: raise a transient ``BackendError`` without calling the server (a connection that
  dropped before the request left);
- ``"after"``: call the server (the call is applied), then raise as if the reply was lost;
- ``"ok"`` / ``None``: call through.

An injector is a list of actions (consumed one per call, then "ok") or a callable returning the
action. ``pause(name)`` makes calls of ``name`` wait until ``resume(name)`` (a paused
heartbeat); ``hold_reply(name)`` lets the server apply calls of ``name`` but keeps their reply
from the caller until ``release(name)`` (a process paused with the reply unread). Every call is
counted in ``calls``, every held reply in ``held``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from dataqueue.errors import BackendError

Action = str | None


def _open(gates: dict[str, asyncio.Event], name: str) -> None:
    """Let the calls waiting at gate ``name`` through, and later ones pass."""
    event = gates.pop(name, None)
    if event is not None:
        event.set()


class Faulty:
    def __init__(self, real: Any) -> None:
        self._real = real
        self.faults: dict[str, list[Action] | Callable[..., Action]] = {}
        self.calls: dict[str, int] = defaultdict(int)
        self.injected: dict[str, int] = defaultdict(int)
        self._paused: dict[str, asyncio.Event] = {}
        self._holding: dict[str, asyncio.Event] = {}
        self.held: dict[str, int] = defaultdict(int)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(faulty, AsyncBackend) holds
        return type(self._real)

    def pause(self, name: str) -> None:
        self._paused[name] = asyncio.Event()

    def resume(self, name: str) -> None:
        _open(self._paused, name)

    def hold_reply(self, name: str) -> None:
        self._holding[name] = asyncio.Event()

    def release(self, name: str) -> None:
        _open(self._holding, name)

    def _action(self, name: str, args: tuple[Any, ...]) -> Action:
        plan = self.faults.get(name)
        if plan is None:
            return None
        if callable(plan):
            return plan(*args)
        return plan.pop(0) if plan else None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not inspect.iscoroutinefunction(attr) or name.startswith("_"):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            paused = self._paused.get(name)
            if paused is not None:
                await paused.wait()
            action = self._action(name, args)
            if action == "before":
                self.injected[name] += 1
                raise BackendError(f"injected: connection lost before {name}")
            result = await attr(*args, **kwargs)
            holding = self._holding.get(name)
            if holding is not None:
                self.held[name] += 1
                await holding.wait()
            if action == "after":
                self.injected[name] += 1
                raise BackendError(f"injected: connection lost after the server applied {name}")
            return result

        return call
