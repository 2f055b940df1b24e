"""Handlers of the ``dataqueue demo`` pipeline; importable so that
``dataqueue worker dataqueue.cli.demo_handlers:HANDLERS`` runs the same jobs.

Each handler sleeps a little (scaled by the payload's ``speed``) and reports progress, standing
in for real I/O. Payload switches make the demo's story:

- ``fail_first_attempt``: raise on attempt 1, succeed on the retry (shows backoff);
- ``always_fail``: raise on every attempt (with ``max_attempts=1`` a terminal failure, whose
  dependents are cancelled by the dependency cascade).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["HANDLERS", "DemoFailure"]


class DemoFailure(RuntimeError):
    """The deliberate failures of the demo."""


async def _work(ctx: Any, seconds: float, steps: int = 5) -> None:
    """Sleep ``seconds`` in ``steps`` slices, reporting progress after each."""
    for i in range(1, steps + 1):
        await asyncio.sleep(seconds / steps)
        await ctx.set_progress(int(100 * i / steps))


def _speed(payload: dict[str, Any]) -> float:
    return float(payload.get("speed", 1.0))


async def ingest(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Pretend to download one file."""
    await _work(ctx, 0.8 * _speed(payload), steps=4)
    if payload.get("fail_first_attempt") and ctx.attempt == 1:
        raise DemoFailure(f"transient: connection reset while reading {payload['file']}")
    rows = 1000 + 250 * len(str(payload.get("file", "")))
    return {"file": payload.get("file"), "rows": rows}


async def transform(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Pretend to clean one ingested file."""
    await _work(ctx, 1.0 * _speed(payload))
    return {"file": payload.get("file"), "clean": True}


async def aggregate(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Pretend to combine every transformed file."""
    await _work(ctx, 0.8 * _speed(payload), steps=4)
    return {"files": payload.get("files", []), "report": "daily-report.parquet"}


async def finalize(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Runs once every job of the pipeline (tag drain) has finished."""
    await _work(ctx, 0.3 * _speed(payload), steps=2)
    return {"published": True}


async def upload(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Pretend to push the report to a partner, which is down."""
    await _work(ctx, 0.4 * _speed(payload), steps=2)
    if payload.get("always_fail"):
        raise DemoFailure(f"partner endpoint {payload.get('endpoint', '?')} returned 503")
    return {"uploaded": True}


async def notify(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Tell the partner the upload arrived (never runs in the demo: it is cancelled)."""
    await _work(ctx, 0.2 * _speed(payload), steps=1)
    return {"notified": True}


HANDLERS: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {
    "demo.ingest": ingest,
    "demo.transform": transform,
    "demo.aggregate": aggregate,
    "demo.finalize": finalize,
    "demo.upload": upload,
    "demo.notify": notify,
}
