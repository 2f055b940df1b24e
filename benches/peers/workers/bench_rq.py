"""RQ's no-op, enqueued by its dotted path and run by ``rq worker-pool``."""

from __future__ import annotations

from record import record


def noop(t: float) -> None:
    record(t)
