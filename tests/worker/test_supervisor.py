"""The supervisor (inventory §7.3, §12.6) on the real backends."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from dataqueue.errors import ConfigurationError

from ._helpers import wait_status, wait_until


def _claim(q: Any, worker: str, lease_seconds: float) -> list[Any]:
    return list(
        q._backend.claim_jobs(
            worker,
            10,
            job_types=None,
            group_concurrency=None,
            lease=timedelta(seconds=lease_seconds),
        )
    )


def _break(q: Any, twin: str, method: str, message: str) -> None:
    """Make one backend method raise (to test error isolation)."""
    if twin == "sync":

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(message)

    else:

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(message)

    setattr(q._backend, method, broken)


def test_one_shot_on_an_empty_queue(q: Any) -> None:
    result = q.create_supervisor().start()
    assert (
        result.reclaimed_jobs,
        result.cleaned_up_jobs,
        result.cleaned_up_events,
        result.expired_tokens,
    ) == (0, 0, 0, 0)


def test_reclaims_jobs_whose_lease_expired(q: Any, make_processor: Any) -> None:
    job_id = q.add_job("t", {})
    assert [j.id for j in _claim(q, "dead-worker", 1)] == [job_id]
    sup = q.create_supervisor()
    assert sup.start().reclaimed_jobs == 0  # lease still valid
    time.sleep(1.3)
    assert sup.start().reclaimed_jobs == 1
    assert q.get_job(job_id).status.value == "pending"
    make_processor({"t": lambda p, c: "again"}).start()
    job = q.get_job(job_id)
    assert job.status.value == "completed"
    assert job.output == "again"


def test_reclaim_of_an_exhausted_job_reports_worker_lost(q: Any) -> None:
    job_id = q.add_job("t", {}, max_attempts=1)
    _claim(q, "dead-worker", 0.5)
    time.sleep(0.8)
    assert q.create_supervisor().start().reclaimed_jobs == 1
    job = q.get_job(job_id)
    assert job.status.value == "failed"
    assert job.failure_reason.value == "worker_lost"


def test_expires_tokens(q: Any) -> None:
    q.create_token(timeout=1)
    time.sleep(1.2)
    assert q.create_supervisor().start().expired_tokens == 1


def test_tasks_can_be_disabled(q: Any) -> None:
    q.add_job("t", {})
    _claim(q, "dead-worker", 0.3)
    q.create_token(timeout=1)
    time.sleep(1.2)
    sup = q.create_supervisor(
        reclaim_stuck_jobs=False,
        expire_timed_out_tokens=False,
        cleanup_jobs_days_to_keep=0,
        cleanup_events_days_to_keep=0,
    )
    assert sup.start().reclaimed_jobs == 0
    assert sup.start().expired_tokens == 0


def test_errors_are_isolated(q: Any, twin: str) -> None:
    q.add_job("t", {})
    _claim(q, "dead-worker", 0.3)
    q.create_token(timeout=1)
    time.sleep(1.2)
    _break(q, twin, "find_stuck_jobs", "reclaim broke")
    errors: list[BaseException] = []
    hooked: list[BaseException] = []
    q.on("error", hooked.append)
    result = q.create_supervisor(on_error=errors.append).start()
    assert result.reclaimed_jobs == 0
    assert result.expired_tokens == 1
    assert [str(e) for e in errors] == ["reclaim broke"]
    assert [str(e) for e in hooked] == ["reclaim broke"]


def test_on_error_raising_is_isolated(q: Any, twin: str) -> None:
    _break(q, twin, "cleanup_old_jobs", "cleanup broke")

    def bad(exc: BaseException) -> None:
        raise RuntimeError("on_error broke")

    result = q.create_supervisor(on_error=bad).start()
    assert result.cleaned_up_jobs == 0


def test_background_loop_stop_and_drain(q: Any, make_processor: Any) -> None:
    sup = q.create_supervisor(interval=0.2)
    assert not sup.is_running()
    sup.start_in_background()
    sup.start_in_background()  # idempotent
    assert sup.is_running()
    job_id = q.add_job("t", {})
    _claim(q, "dead-worker", 0.3)
    wait_status(q, job_id, "pending", timeout=10)  # reclaimed by a background run
    sup.stop_and_drain(5)
    assert not sup.is_running()


def test_restart_right_after_stop_keeps_the_new_loop_running(q: Any) -> None:
    sup = q.create_supervisor(interval=0.1)
    sup.start_in_background()
    sup.stop()
    sup.start_in_background()  # the first loop may still be finishing its run
    time.sleep(0.5)  # by now the first loop has seen its stop and ended
    assert sup.is_running()
    sup.stop_and_drain(5)
    assert not sup.is_running()


def test_stop_and_drain_returns_when_idle(q: Any) -> None:
    sup = q.create_supervisor(interval=60)
    started = time.monotonic()
    sup.stop_and_drain(5)
    sup.start_in_background()
    wait_until(lambda: True)
    sup.stop_and_drain(5)
    assert time.monotonic() - started < 5
    assert not sup.is_running()


@pytest.mark.parametrize(
    "options",
    [
        {"interval": 0},
        {"cleanup_batch_size": 0},
        {"cleanup_jobs_days_to_keep": -1},
        {"cleanup_events_days_to_keep": 10**12},  # the cutoff date would overflow
    ],
)
def test_invalid_options(q: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        q.create_supervisor(**options)


def test_unknown_option_is_a_type_error_naming_it(q: Any) -> None:
    # The options are keyword parameters, so a type checker catches a misspelling first.
    with pytest.raises(TypeError, match="bogus"):
        q.create_supervisor(bogus=1)
