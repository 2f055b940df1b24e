"""Dramatiq's Redis broker and no-op actor, run by ``dramatiq bench_dramatiq``; the client
imports this module to send, as an application imports its actors."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from record import record

dramatiq.set_broker(RedisBroker(url=os.environ.get("BENCH_URL", "redis://localhost")))


@dramatiq.actor(actor_name="noop")
def noop(t: float) -> None:
    record(t)
