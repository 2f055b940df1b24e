"""In-process hooks: payloads, only real transitions, once/off/remove_all, listener errors."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from _worker_helpers import claim_job, complete
from dataqueue import ConfigurationError


class Recorder:
    """A listener that records payloads (listeners may run on another thread)."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, payload: Any) -> None:
        with self._lock:
            self.calls.append(payload)


def test_job_added_for_single_and_batch(q: Any) -> None:
    rec = Recorder()
    q.on("job:added", rec)
    a = q.add_job("one")
    b, c = q.add_jobs([{"job_type": "two"}, {"job_type": "three"}])
    assert q.add_jobs([]) == []
    assert rec.calls == [
        {"job_id": a, "job_type": "one", "created": True},
        {"job_id": b, "job_type": "two", "created": True},
        {"job_id": c, "job_type": "three", "created": True},
    ]


def test_job_added_for_idempotent_hit_says_not_created(q: Any) -> None:
    rec = Recorder()
    first = q.add_job("t", idempotency_key="k")
    q.on("job:added", rec)
    assert q.add_job("t", idempotency_key="k") == first
    assert rec.calls == [{"job_id": first, "job_type": "t", "created": False}]


def test_no_job_added_when_enqueue_fails(q: Any) -> None:
    rec = Recorder()
    q.on("job:added", rec)
    with pytest.raises(Exception):  # noqa: B017 - any validation error
        q.add_job("t", object())
    assert rec.calls == []


def test_cancelled_and_retried_only_for_real_transitions(q: Any) -> None:
    cancelled, retried = Recorder(), Recorder()
    q.on("job:cancelled", cancelled)
    q.on("job:retried", retried)
    pending = q.add_job("t")
    assert q.cancel_job(pending)
    assert not q.cancel_job(pending)  # already cancelled: no event
    assert not q.retry_job(pending)  # cancelled jobs cannot be retried
    done = q.add_job("t")
    complete(q, claim_job(q, done))
    assert not q.cancel_job(done)
    assert not q.retry_job(done)
    running = q.add_job("t")
    claim_job(q, running)
    assert q.retry_job(running)
    assert cancelled.calls == [{"job_id": pending}]
    assert retried.calls == [{"job_id": running}]


def test_once_off_and_remove_all_listeners(q: Any) -> None:
    every, first, removed, other = Recorder(), Recorder(), Recorder(), Recorder()
    q.on("job:added", every)
    q.once("job:added", first)
    q.on("job:added", removed)
    q.on("job:cancelled", other)
    q.off("job:added", removed)
    a = q.add_job("t")
    b = q.add_job("t")
    assert [c["job_id"] for c in every.calls] == [a, b]
    assert [c["job_id"] for c in first.calls] == [a]
    assert removed.calls == []
    q.remove_all_listeners("job:added")
    q.add_job("t")
    assert len(every.calls) == 2
    q.cancel_job(b)
    assert other.calls == [{"job_id": b}]
    q.remove_all_listeners()
    q.cancel_job(a)
    assert other.calls == [{"job_id": b}]


def test_listener_exception_is_reported_not_raised(q: Any) -> None:
    errors = Recorder()
    boom = RuntimeError("listener failed")

    def bad(payload: Any) -> None:
        raise boom

    q.on("error", errors)
    q.on("job:added", bad)
    job_id = q.add_job("t")  # the enqueue still succeeds
    assert q.get_job(job_id) is not None
    assert errors.calls == [boom]


def test_failing_error_listener_does_not_recurse(q: Any) -> None:
    calls = Recorder()

    def bad_error_listener(exc: Any) -> None:
        calls(exc)
        raise ValueError("error listener failed too")

    def bad(payload: Any) -> None:
        raise RuntimeError("first")

    q.on("error", bad_error_listener)
    q.on("job:added", bad)
    q.add_job("t")
    assert len(calls.calls) == 1


def test_async_listener_runs(q: Any, twin: str) -> None:
    done = threading.Event()
    seen: list[Any] = []

    async def listener(payload: Any) -> None:
        seen.append(payload)
        done.set()

    q.on("job:added", listener)
    job_id = q.add_job("t")
    assert done.wait(5)
    assert seen == [{"job_id": job_id, "job_type": "t", "created": True}]


def test_unknown_event_and_bad_listener_rejected(q: Any) -> None:
    with pytest.raises(ConfigurationError):
        q.on("job:exploded", print)
    with pytest.raises(ConfigurationError):
        q.on("job:added", "not callable")


def test_listener_usable_as_decorator(q: Any) -> None:
    rec = Recorder()
    assert q.on("job:added", rec) is rec


def test_async_listener_exception_is_reported(q: Any) -> None:
    reported = threading.Event()
    errors: list[Any] = []

    def on_error(exc: Any) -> None:
        errors.append(exc)
        reported.set()

    async def bad(payload: Any) -> None:
        raise KeyError("async listener failed")

    q.on("error", on_error)
    q.on("job:added", bad)
    q.add_job("t")
    assert reported.wait(5)
    assert isinstance(errors[0], KeyError)
