"""Module-level handlers for force-kill tests (a child process imports them by module path)."""

from __future__ import annotations

import os
import time
from typing import Any


def stubborn(payload: dict[str, Any], ctx: Any) -> str:
    """Writes its pid, then ignores cancellation and sleeps far past any timeout."""
    with open(payload["pid_file"], "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(payload.get("sleep", 60))
    return "should never finish"


def quick(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    ctx.set_progress(50)
    value = ctx.run("double", lambda: payload["n"] * 2)
    return {"doubled": value, "pid": os.getpid(), "job_id": ctx.job_id}


async def quick_async(payload: dict[str, Any], ctx: Any) -> str:
    return "async-ok"


def raises(payload: dict[str, Any], ctx: Any) -> None:
    raise ValueError("child says no")


def rejects(payload: dict[str, Any], ctx: Any) -> None:
    from dataqueue import NonRetryable

    raise NonRetryable("card declined")


def later(payload: dict[str, Any], ctx: Any) -> None:
    from dataqueue import Retry

    raise Retry(after=600)


class Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # args (a message) do not rebuild it
        super().__init__(f"{a} and {b}")


def raises_unpicklable(payload: dict[str, Any], ctx: Any) -> None:
    raise Unpicklable(1, 2)
