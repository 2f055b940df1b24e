"""dataqueue's no-op, run by ``dataqueue worker bench_dataqueue:HANDLERS``."""

from __future__ import annotations

from typing import Any

from record import record


async def noop(payload: dict[str, Any], ctx: Any) -> None:
    record(payload["t"])


HANDLERS = {"noop": noop}
