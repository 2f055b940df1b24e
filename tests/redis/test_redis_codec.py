"""The job hash decoder (codec.job_from_hash, built on the Rust core's RecordSpec)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest
from dataqueue.backends.redis import codec
from dataqueue.lifecycle import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY
from dataqueue.records import FailureReason, JobRecord, JobStatus

T0 = "1764645000000000"  # 2025-12-02T03:10:00Z in µs
MINIMAL = {
    "id": "7",
    "job_type": "email",
    "payload": '{"to": ["a"]}',
    "status": "pending",
    "created_at": T0,
    "updated_at": T0,
    "run_at": T0,
}


def test_minimal_hash_takes_every_default() -> None:
    job = codec.job_from_hash(dict(MINIMAL))
    assert job.id == 7 and job.payload == {"to": ["a"]} and job.status is JobStatus.PENDING
    assert job.created_at == datetime(2025, 12, 2, 3, 10, tzinfo=timezone.utc)
    assert (job.priority, job.attempts, job.max_attempts, job.lock_version) == (
        DEFAULT_PRIORITY,
        0,
        DEFAULT_MAX_ATTEMPTS,
        0,
    )
    assert job.error_history == () and job.force_kill_on_timeout is False
    assert job.tags is None and job.retry_backoff is None and job.output is None
    # a fresh {} per record: mutating one job's step data never leaks into another's
    other = codec.job_from_hash(dict(MINIMAL))
    assert job.step_data == {} and job.step_data is not other.step_data
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.id = 8  # type: ignore[misc]


def test_every_stored_field_converts() -> None:
    h = dict(
        MINIMAL,
        status="failed",
        priority="-3",
        attempts="2",
        tags='["x", "y"]',
        error_history='[{"message": "boom"}]',
        step_data='{"s": 1}',
        output="[1, 2]",
        retry_backoff="0",
        force_kill_on_timeout="1",
        failure_reason="timeout",
        depends_on_job_ids="[1, 2]",
        timeout_ms="250",
        locked_by="w1",
        loc="h",  # internal fields are ignored
        unmet="1",
    )
    times: dict[str, datetime] = {}
    job = codec.job_from_hash(h, times)
    assert job.status is JobStatus.FAILED and job.failure_reason is FailureReason.TIMEOUT
    assert (job.priority, job.attempts, job.timeout_ms) == (-3, 2, 250)
    assert job.tags == ("x", "y") and job.depends_on_job_ids == (1, 2)
    assert job.error_history == ({"message": "boom"},) and job.step_data == {"s": 1}
    assert job.output == [1, 2] and job.retry_backoff is False and job.force_kill_on_timeout
    assert job.locked_by == "w1"
    # one datetime per distinct stored time, shared by the fields (and jobs) of one read
    assert list(times) == [T0] and job.created_at is job.run_at
    assert isinstance(job, JobRecord)


def test_missing_or_unknown_values_raise() -> None:
    with pytest.raises(KeyError):
        codec.job_from_hash({k: v for k, v in MINIMAL.items() if k != "status"})
    with pytest.raises(ValueError):
        codec.job_from_hash(dict(MINIMAL, status="bogus"))
    with pytest.raises(ValueError):
        codec.job_from_hash(dict(MINIMAL, attempts="x"))
