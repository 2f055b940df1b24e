"""A dropped database connection is a transient error (SPEC §10.10): the server really closes
the worker's connections (``pg_terminate_backend`` / ``CLIENT KILL``) and the processor keeps
claiming and finishing jobs, with the outcome of the job in flight unchanged."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from _connections import kill_named, named

from ._helpers import wait_status, wait_until


def _killer(storage: Any) -> tuple[dict[str, Any], Any]:
    """Queue options naming this test's connections, and a function dropping all of them."""
    name = f"dqkill{uuid.uuid4().hex[:10]}"
    options = {"url": named(storage.backend, storage.url, name)}
    return options, lambda: kill_named(storage.backend, storage.url, name)


def test_processor_survives_its_connections_being_killed(
    storage: Any, queue_factory: Any, make_processor: Any
) -> None:
    options, kill = _killer(storage)
    worker_queue = queue_factory(**options)
    errors: list[BaseException] = []
    release = threading.Event()

    def slow(payload: Any, ctx: Any) -> str:
        release.wait(20)
        return "slow done"

    in_flight = worker_queue.add_job("slow", {})
    proc = make_processor(
        {"slow": slow, "t": lambda p, c: p + 1},
        queue=worker_queue,
        concurrency=2,
        on_error=errors.append,
    )
    proc.start_in_background()
    wait_status(worker_queue, in_flight, "processing")

    assert kill() > 0  # the worker's pool and wake-up connections are gone
    release.set()  # its completion now runs into a dead connection
    for round_ in range(2):
        check = queue_factory(**options)
        job_id = check.add_job("t", round_)
        assert wait_status(check, job_id, "completed", timeout=30).output == round_ + 1
        assert proc.is_running()
        if round_ == 0:
            kill()  # again, while idle: the wake-up connection must come back too
    job = wait_status(queue_factory(**options), in_flight, "completed", timeout=30)
    assert job.output == "slow done"
    assert job.attempts == 1
    wait_until(proc.is_running)
