"""``create_processor`` / ``create_supervisor`` on both twins (behaviour: tests/worker)."""

from __future__ import annotations

import time
from typing import Any

from _worker_helpers import claim_job
from dataqueue import JobStatus, TokenStatus


def _close(processor: Any, twin: str) -> None:
    """Release the processor's resources (its heartbeat, its connections)."""
    if twin == "sync":
        processor.close()
    else:
        processor.stop_and_drain(5)


def test_create_processor_runs_a_job(q: Any, twin: str) -> None:
    seen: list[Any] = []
    q.on("job:completed", seen.append)
    job_id = q.add_job("double", {"n": 21})
    processor = q.create_processor({"double": lambda payload, ctx: payload["n"] * 2})
    try:
        assert processor.start() == 1
    finally:
        _close(processor, twin)
    job = q.get_job(job_id)
    assert job.status == JobStatus.COMPLETED
    assert job.output == 42
    assert seen == [{"job_id": job_id, "job_type": "double"}]


def test_create_supervisor_does_maintenance(q: Any) -> None:
    stuck = q.add_job("stuck")
    claim_job(q, stuck)
    token = q.create_token(timeout=0.05)
    time.sleep(0.2)
    supervisor = q.create_supervisor(stuck_jobs_timeout_minutes=0.001)
    result = supervisor.start()
    assert result.reclaimed_jobs == 1
    assert result.expired_tokens == 1
    assert q.get_job(stuck).status == JobStatus.PENDING
    assert q.get_token(token.id).status == TokenStatus.TIMED_OUT


def test_listener_exception_never_changes_a_job_outcome(q: Any, twin: str) -> None:
    errors: list[Any] = []

    def explode(payload: Any) -> None:
        raise RuntimeError("listener bug")

    q.on("error", errors.append)
    q.on("job:completed", explode)
    q.on("job:processing", explode)
    job_id = q.add_job("ok")
    processor = q.create_processor({"ok": lambda payload, ctx: "fine"})
    try:
        assert processor.start() == 1
    finally:
        _close(processor, twin)
    job = q.get_job(job_id)
    assert job.status == JobStatus.COMPLETED and job.output == "fine"
    assert len(errors) == 2 and all(isinstance(e, RuntimeError) for e in errors)
