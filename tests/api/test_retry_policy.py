"""Retry policies: retry_on / dont_retry_on (task and processor level), NonRetryable/Abort and
Retry(after=...), on both backends and both twins."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _worker_helpers import run_once
from dataqueue import Abort, InvalidJobError, JobStatus, NonRetryable, Retry
from dataqueue.processor import JobTimeoutError


def _terminal(job: Any) -> bool:
    return job.status == JobStatus.FAILED and job.next_attempt_at is None


def test_non_retryable_fails_for_good_with_dead_letter_and_cascade(q: Any) -> None:
    def reject(p: Any, c: Any) -> None:
        raise NonRetryable("card declined")

    job_id = q.add_job("charge", {}, max_attempts=5, dead_letter_job_type="charge_dlq")
    child = q.add_job("receipt", {}, depends_on={"job_ids": [job_id]})
    assert run_once(q, {"charge": reject}, job_type="charge") == 1
    job = q.get_job(job_id)
    assert _terminal(job) and job.attempts == 1
    assert job.error_history[-1]["message"] == "card declined"
    assert "NonRetryable" in job.error_history[-1]["traceback"]
    assert job.dead_letter_job_id is not None
    assert q.get_job(job.dead_letter_job_id).job_type == "charge_dlq"
    assert q.get_job(child).status == JobStatus.CANCELLED
    assert Abort is NonRetryable


def test_task_retry_on_and_dont_retry_on(q: Any) -> None:
    def flaky(kind: str) -> None:
        raise {"timeout": TimeoutError, "value": ValueError, "key": KeyError}[kind]("x")

    only_timeouts = q.task(flaky, job_type="only_timeouts", max_attempts=3, retry_on=TimeoutError)
    not_values = q.task(lambda kind: flaky(kind), job_type="not_values", max_attempts=3,
                        dont_retry_on=(ValueError,))  # fmt: skip
    a = only_timeouts.defer("timeout").job_id
    b = only_timeouts.defer("value").job_id
    c = not_values.defer("value").job_id
    d = not_values.defer("key").job_id
    assert run_once(q) == 4
    assert not _terminal(q.get_job(a))  # TimeoutError is in retry_on: retried
    assert _terminal(q.get_job(b))  # anything else is not
    assert _terminal(q.get_job(c))  # ValueError is in dont_retry_on
    assert not _terminal(q.get_job(d))


def test_processor_level_policy_for_handler_dicts(q: Any) -> None:
    def bad(p: Any, c: Any) -> None:
        raise ValueError("bad payload")

    def down(p: Any, c: Any) -> None:
        raise ConnectionError("db down")

    a = q.add_job("bad", {})
    b = q.add_job("down", {})
    assert run_once(q, {"bad": bad, "down": down}, dont_retry_on=[ValueError]) == 2
    assert _terminal(q.get_job(a))
    assert not _terminal(q.get_job(b))


def test_retry_after_sets_the_delay_and_uses_an_attempt(q: Any) -> None:
    def later(p: Any, c: Any) -> None:
        raise Retry(after=timedelta(minutes=10))

    job_id = q.add_job("later", {}, max_attempts=2, retry_delay=1)
    before = datetime.now(timezone.utc)
    assert run_once(q, {"later": later}) == 1
    job = q.get_job(job_id)
    assert job.status == JobStatus.FAILED and job.attempts == 1
    delay = (job.next_attempt_at - before).total_seconds()
    assert 590 < delay < 610, delay  # the requested 10 minutes, not retry_delay=1
    job2 = q.add_job("later", {}, max_attempts=1)
    assert run_once(q, {"later": later}) == 1
    assert _terminal(q.get_job(job2))


def test_retry_after_validates_its_delay() -> None:
    for bad in (-1, float("nan"), float("inf"), "5", True):
        with pytest.raises(InvalidJobError, match="Retry"):
            Retry(after=bad)
    assert Retry(after=2.5).after == 2.5


def test_a_timed_out_attempt_is_a_timeout_error_for_the_policy(q: Any) -> None:
    """``retry_on=(TimeoutError,)`` retries an attempt that ran past the task's ``timeout``;
    ``dont_retry_on=(TimeoutError,)`` ends it at once."""

    async def slow() -> None:
        await asyncio.sleep(10)

    def slow_sync() -> None:
        time.sleep(1)

    retried = q.task(slow, job_type="retried", timeout=0.2, max_attempts=3,
                     retry_on=(TimeoutError,))  # fmt: skip
    ended = q.task(slow_sync, job_type="ended", timeout=0.2, max_attempts=3,
                   dont_retry_on=TimeoutError)  # fmt: skip
    a, b = retried.defer().job_id, ended.defer().job_id
    assert run_once(q, batch_size=2) == 2
    job_a, job_b = q.get_job(a), q.get_job(b)
    assert job_a.failure_reason == job_b.failure_reason == "timeout"
    assert not _terminal(job_a) and _terminal(job_b)
    assert issubclass(JobTimeoutError, TimeoutError)
