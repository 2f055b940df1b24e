"""retry, cancel, edit, bulk edit/cancel, cleanup, reclaim, failure bookkeeping, dead letters."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _worker_helpers import (
    LEASE,
    WORKER,
    claim,
    claim_job,
    claimed_ids,
    complete,
    fail,
    fail_terminally,
)
from dataqueue import (
    FailureReason,
    InvalidFilterError,
    InvalidJobError,
    JobEventType,
    JobStatus,
)

UTC = timezone.utc
FUTURE = datetime(2031, 1, 1, tzinfo=UTC)


def events(q: Any, job_id: int) -> list[JobEventType]:
    return [e.event_type for e in q.get_job_events(job_id)]


# -- retry --------------------------------------------------------------------------------


def test_retry_failed_job_resets_attempts_and_keeps_history(q: Any) -> None:
    job_id = q.add_job("t", max_attempts=1)
    outcome = fail_terminally(q, job_id, "first failure")
    assert outcome.applied and not outcome.will_retry
    failed = q.get_job(job_id)
    assert failed.status == JobStatus.FAILED and failed.attempts == 1
    assert failed.next_attempt_at is None
    assert claim(q) == []  # exhausted: not claimable

    assert q.retry_job(job_id) is True
    retried = q.get_job(job_id)
    assert retried.status == JobStatus.PENDING
    assert retried.attempts == 0
    assert retried.last_retried_at is not None
    assert [e["message"] for e in retried.error_history] == ["first failure"]
    assert events(q, job_id)[-1] == JobEventType.RETRIED
    again = claim_job(q, job_id)
    assert again.attempts == 1
    assert complete(q, again)
    assert q.get_job(job_id).status == JobStatus.COMPLETED


@pytest.mark.parametrize("state", ["pending", "completed", "cancelled"])
def test_retry_is_a_no_op_outside_failed_and_processing(q: Any, state: str) -> None:
    job_id = q.add_job("t")
    if state == "completed":
        complete(q, claim_job(q, job_id))
    elif state == "cancelled":
        q.cancel_job(job_id)
    before = q.get_job(job_id)
    assert q.retry_job(job_id) is False
    assert q.get_job(job_id) == before
    assert JobEventType.RETRIED not in events(q, job_id)


def test_retry_unknown_job_is_false(q: Any) -> None:
    assert q.retry_job(424242) is False


def test_retry_processing_job_fences_off_the_old_worker(q: Any) -> None:
    job_id = q.add_job("t")
    stale = claim_job(q, job_id, worker_id="worker-a")
    assert q.retry_job(job_id) is True
    assert q.get_job(job_id).status == JobStatus.PENDING
    fresh = claim_job(q, job_id, worker_id="worker-b")
    assert fresh.lock_version != stale.lock_version
    assert complete(q, stale, {"by": "a"}) is False  # the stale worker's result is discarded
    assert not fail(q, stale).applied
    # SPEC §10.2: wait, prolong and heartbeat of the stale worker are fenced off as well
    assert not q._backend.wait_job(
        job_id, "worker-a", stale.lock_version, wait_until=FUTURE, token_id=None, step_data={}
    )
    assert not q._backend.prolong_job(job_id, "worker-a", stale.lock_version, LEASE)
    assert q._backend.heartbeat("worker-a", [job_id], LEASE) == 0
    assert not q._backend.prolong_job(job_id, "worker-b", stale.lock_version, LEASE)
    assert q._backend.prolong_job(job_id, "worker-b", fresh.lock_version, LEASE)
    assert q.get_job(job_id).status == JobStatus.PROCESSING
    assert complete(q, fresh, {"by": "b"}) is True
    done = q.get_job(job_id)
    assert done.status == JobStatus.COMPLETED and done.output == {"by": "b"}


def test_retried_job_is_claimable_and_re_claim_sets_last_retried_at(q: Any) -> None:
    job_id = q.add_job("t", max_attempts=3)
    first = claim_job(q, job_id)
    assert first.last_retried_at is None and first.started_at is not None
    outcome = fail(q, first, "transient", retry_delay_seconds=0)
    assert outcome.applied and outcome.will_retry
    failed = q.get_job(job_id)
    assert failed.status == JobStatus.FAILED
    assert failed.next_attempt_at is not None
    assert failed.failure_reason == FailureReason.HANDLER_ERROR
    assert failed.last_failed_at is not None
    second = claim_job(q, job_id)
    assert second.attempts == 2
    assert second.last_retried_at is not None
    assert second.started_at == first.started_at  # only the first claim sets started_at


def test_retry_delay_keeps_job_unclaimable_until_due(q: Any) -> None:
    job_id = q.add_job("t")
    fail(q, claim_job(q, job_id), retry_delay_seconds=3600)
    job = q.get_job(job_id)
    assert job.next_attempt_at is not None
    assert job.next_attempt_at > datetime.now(UTC) + timedelta(minutes=50)
    assert claim(q) == []


def test_exhaustion_records_every_error(q: Any) -> None:
    job_id = q.add_job("t", max_attempts=2)
    assert fail(q, claim_job(q, job_id), "one").will_retry is True
    assert fail(q, claim_job(q, job_id), "two").will_retry is False
    job = q.get_job(job_id)
    assert job.status == JobStatus.FAILED
    assert job.attempts == 2
    assert job.next_attempt_at is None
    assert [e["message"] for e in job.error_history] == ["one", "two"]
    assert all("timestamp" in e for e in job.error_history)
    assert claim(q) == []


def test_failure_reason_is_recorded(q: Any) -> None:
    job_id = q.add_job("t", max_attempts=1)
    fail(q, claim_job(q, job_id), "slow", reason=FailureReason.TIMEOUT)
    assert q.get_job(job_id).failure_reason == FailureReason.TIMEOUT


# -- dead letters -------------------------------------------------------------------------


def test_terminal_failure_routes_to_dead_letter_job(q: Any) -> None:
    job_id = q.add_job("charge", {"amount": 5}, max_attempts=1, dead_letter_job_type="charge_dlq")
    outcome = fail(q, claim_job(q, job_id), "card declined")
    assert outcome.dead_letter_job_id is not None
    source = q.get_job(job_id)
    assert source.dead_letter_job_id == outcome.dead_letter_job_id
    assert source.dead_lettered_at is not None
    dlq = q.get_job(outcome.dead_letter_job_id)
    assert dlq.job_type == "charge_dlq"
    assert dlq.status == JobStatus.PENDING
    assert dlq.max_attempts == 1
    envelope = dlq.payload
    assert envelope["original_job"] == {
        "id": job_id,
        "job_type": "charge",
        "attempts": 1,
        "max_attempts": 1,
    }
    assert envelope["original_payload"] == {"amount": 5}
    assert envelope["failure"]["message"] == "card declined"
    assert envelope["failure"]["reason"] == "handler_error"
    assert envelope["failure"]["failed_at"]


def test_dead_letter_reason_null_without_reason(q: Any) -> None:
    job_id = q.add_job("t", max_attempts=1, dead_letter_job_type="dlq")
    outcome = fail(q, claim_job(q, job_id), "x", reason=None)
    assert q.get_job(outcome.dead_letter_job_id).payload["failure"]["reason"] is None


def test_retryable_failure_does_not_dead_letter(q: Any) -> None:
    job_id = q.add_job("t", max_attempts=2, dead_letter_job_type="dlq")
    outcome = fail(q, claim_job(q, job_id))
    assert outcome.will_retry and outcome.dead_letter_job_id is None
    assert q.get_jobs({"job_type": "dlq"}) == []


# -- cancel -------------------------------------------------------------------------------


def test_cancel_pending_job(q: Any) -> None:
    job_id = q.add_job("t", run_at=FUTURE)
    assert q.cancel_job(job_id) is True
    job = q.get_job(job_id)
    assert job.status == JobStatus.CANCELLED
    assert job.last_cancelled_at is not None
    cancelled = [e for e in q.get_job_events(job_id) if e.event_type == JobEventType.CANCELLED]
    assert len(cancelled) == 1 and cancelled[0].metadata is None
    assert claim(q) == []


def test_cancel_is_a_no_op_for_finished_or_running_jobs(q: Any) -> None:
    done, running, cancelled = q.add_job("a"), q.add_job("b"), q.add_job("c")
    complete(q, claim_job(q, done, job_types=["a"]))
    claim_job(q, running, job_types=["b"])
    assert q.cancel_job(cancelled) is True
    for job_id, status in (
        (done, JobStatus.COMPLETED),
        (running, JobStatus.PROCESSING),
        (cancelled, JobStatus.CANCELLED),
    ):
        assert q.cancel_job(job_id) is False
        assert q.get_job(job_id).status == status
    assert events(q, cancelled).count(JobEventType.CANCELLED) == 1
    assert q.cancel_job(999999) is False


def test_cancel_waiting_job_clears_wait(q: Any) -> None:
    job_id = q.add_job("t")
    job = claim_job(q, job_id)
    until = datetime.now(UTC) + timedelta(hours=1)
    assert q._backend.wait_job(
        job_id, WORKER, job.lock_version, wait_until=until, token_id=None, step_data={"s": 1}
    )
    waiting = q.get_job(job_id)
    assert waiting.status == JobStatus.WAITING and waiting.wait_until is not None
    assert q.cancel_job(job_id) is True
    cancelled = q.get_job(job_id)
    assert cancelled.status == JobStatus.CANCELLED
    assert cancelled.wait_until is None and cancelled.wait_token_id is None


# -- edit ---------------------------------------------------------------------------------


def test_edit_pending_job_all_fields(q: Any) -> None:
    job_id = q.add_job("t", {"v": 1}, tags=["old"], timeout_ms=10, retry_delay=1)
    before = q.get_job(job_id)
    time.sleep(0.01)
    new_run_at = datetime(2032, 2, 2, tzinfo=UTC)
    assert q.edit_job(
        job_id,
        payload={"v": 2},
        max_attempts=9,
        priority=7,
        run_at=new_run_at,
        timeout_ms=500,
        tags=["new", "tags"],
        retry_delay=30,
        retry_backoff=False,
        retry_delay_max=300,
        dead_letter_job_type="dlq",
    )
    job = q.get_job(job_id)
    assert job.payload == {"v": 2}
    assert (job.max_attempts, job.priority, job.run_at) == (9, 7, new_run_at)
    assert job.timeout_ms == 500
    assert job.tags == ("new", "tags")
    assert (job.retry_delay, job.retry_backoff, job.retry_delay_max) == (30, False, 300)
    assert job.dead_letter_job_type == "dlq"
    assert job.updated_at > before.updated_at
    assert [j.id for j in q.get_jobs_by_tags(["new"])] == [job_id]
    assert q.get_jobs_by_tags(["old"]) == []


def test_edit_partial_and_clearing_fields(q: Any) -> None:
    job_id = q.add_job(
        "t",
        {"keep": True},
        priority=3,
        tags=["x"],
        timeout_ms=10,
        retry_delay=5,
        dead_letter_job_type="dlq",
    )
    assert q.edit_job(job_id, priority=4)
    assert q.edit_job(
        job_id, tags=None, timeout_ms=None, retry_delay=None, dead_letter_job_type=None
    )
    job = q.get_job(job_id)
    assert job.payload == {"keep": True} and job.priority == 4
    assert job.tags is None and job.timeout_ms is None and job.retry_delay is None
    assert job.dead_letter_job_type is None
    assert q.get_jobs_by_tags(["x"]) == []


def test_edit_run_at_none_means_now_and_makes_job_due(q: Any) -> None:
    job_id = q.add_job("t", run_at=FUTURE)
    assert claim(q) == []
    assert q.edit_job(job_id, run_at=None)
    assert q.get_job(job_id).run_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert claimed_ids(q) == [job_id]


def test_edit_run_at_later_delays_a_due_job(q: Any) -> None:
    job_id = q.add_job("t")
    assert q.edit_job(job_id, run_at=FUTURE)
    assert claim(q) == []


def test_edit_priority_changes_claim_order(q: Any) -> None:
    a, b = q.add_job("t"), q.add_job("t")
    assert q.edit_job(b, priority=10)
    assert claimed_ids(q) == [b, a]


def test_edit_records_edited_event_with_given_fields(q: Any) -> None:
    job_id = q.add_job("t")
    q.edit_job(job_id, payload={"n": 1}, priority=2, tags=["a"])
    edited = [e for e in q.get_job_events(job_id) if e.event_type == JobEventType.EDITED]
    assert len(edited) == 1
    assert edited[0].metadata == {"payload": {"n": 1}, "priority": 2, "tags": ["a"]}


def test_edit_non_pending_job_is_ignored(q: Any) -> None:
    job_id = q.add_job("t", {"v": 1})
    claim_job(q, job_id)
    assert q.edit_job(job_id, payload={"v": 2}) is False
    assert q.get_job(job_id).payload == {"v": 1}
    assert JobEventType.EDITED not in events(q, job_id)


def test_edit_without_fields_is_a_no_op(q: Any) -> None:
    job_id = q.add_job("t")
    before = q.get_job(job_id)
    assert q.edit_job(job_id) is False
    assert q.get_job(job_id) == before
    assert JobEventType.EDITED not in events(q, job_id)


@pytest.mark.parametrize(
    "updates",
    [
        {"group": "g"},
        {"idempotency_key": "k"},
        {"depends_on": {}},
        {"job_type": "x"},
        {"max_attempts": 0},
        {"payload": {1, 2}},
        {"run_at": datetime(2030, 1, 1)},
    ],
)
def test_edit_rejects_bad_updates(q: Any, updates: dict[str, Any]) -> None:
    job_id = q.add_job("t", {"v": 1})
    before = q.get_job(job_id)
    with pytest.raises(InvalidJobError):
        q.edit_job(job_id, **updates)
    assert q.get_job(job_id) == before


def test_edit_all_pending_jobs(q: Any) -> None:
    a = q.add_job("email", priority=1, tags=["x"], run_at=FUTURE)
    b = q.add_job("email", priority=2, tags=["y"], run_at=FUTURE)
    c = q.add_job("sms", priority=1, run_at=FUTURE + timedelta(days=1))
    done = q.add_job("email", tags=["x"])
    complete(q, claim_job(q, done))

    assert q.edit_all_pending_jobs({"job_type": "email"}, payload={"e": 1}) == 2
    assert q.edit_all_pending_jobs({"priority": 1}, max_attempts=5) == 2
    assert q.edit_all_pending_jobs({"tags": {"values": ["x"], "mode": "all"}}, priority=9) == 1
    assert q.edit_all_pending_jobs({"run_at": {"gt": FUTURE}}, timeout_ms=99) == 1
    assert q.edit_all_pending_jobs({"job_type": "email"}) == 0  # no fields
    assert q.edit_all_pending_jobs(None, retry_delay=7) == 3
    ja, jb, jc, jd = (q.get_job(i) for i in (a, b, c, done))
    assert ja.payload == jb.payload == {"e": 1} and jc.payload is None
    assert (ja.max_attempts, jb.max_attempts, jc.max_attempts) == (5, 3, 5)
    assert (ja.priority, jb.priority) == (9, 2)
    assert jc.timeout_ms == 99 and ja.timeout_ms is None
    assert ja.retry_delay == jb.retry_delay == jc.retry_delay == 7
    assert jd.retry_delay is None and jd.payload is None  # non-pending untouched
    assert events(q, a).count(JobEventType.EDITED) == 4
    assert JobEventType.EDITED not in events(q, done)


def test_cancel_all_upcoming_jobs_only_pending(q: Any) -> None:
    pending = [q.add_job("t", run_at=FUTURE) for _ in range(2)]
    running = q.add_job("now")
    claim_job(q, running, job_types=["now"])
    assert q.cancel_all_upcoming_jobs() == 2
    assert all(q.get_job(i).status == JobStatus.CANCELLED for i in pending)
    assert q.get_job(running).status == JobStatus.PROCESSING
    assert q.cancel_all_upcoming_jobs() == 0


def test_cancel_all_upcoming_jobs_leaves_waiting_jobs(q: Any) -> None:
    job_id = q.add_job("t")
    job = claim_job(q, job_id)
    q._backend.wait_job(
        job_id, WORKER, job.lock_version, wait_until=FUTURE, token_id=None, step_data={}
    )
    assert q.cancel_all_upcoming_jobs() == 0
    assert q.get_job(job_id).status == JobStatus.WAITING


@pytest.mark.parametrize(
    "filters,expected",
    [
        ({"job_type": "email"}, {"e1", "e2"}),
        ({"priority": 2}, {"e2"}),
        ({"job_type": "email", "priority": 2}, {"e2"}),
        ({"tags": {"values": ["x"], "mode": "all"}}, {"e1"}),
        ({"tags": {"values": ["x", "y"], "mode": "any"}}, {"e1", "e2"}),
        ({"tags": {"values": ["x"], "mode": "none"}}, {"e2", "s1"}),
        ({"tags": {"values": ["y"], "mode": "exact"}}, {"e2"}),
        ({"tags": {"values": ["x"]}, "job_type": "sms"}, set()),
        ({"run_at": {"gt": FUTURE}}, {"e2", "s1"}),
        ({"run_at": {"gte": FUTURE}}, {"e1", "e2", "s1"}),
        ({"run_at": {"lt": FUTURE + timedelta(days=1)}}, {"e1"}),
        ({"run_at": {"lte": FUTURE + timedelta(days=1)}}, {"e1", "e2"}),
        ({"run_at": {"eq": FUTURE + timedelta(days=2)}}, {"s1"}),
        ({"run_at": FUTURE}, {"e1"}),
    ],
)
def test_cancel_all_upcoming_jobs_filters(
    q: Any, filters: dict[str, Any], expected: set[str]
) -> None:
    made = {
        "e1": q.add_job("email", priority=1, tags=["x"], run_at=FUTURE),
        "e2": q.add_job("email", priority=2, tags=["y"], run_at=FUTURE + timedelta(days=1)),
        "s1": q.add_job("sms", priority=1, run_at=FUTURE + timedelta(days=2)),
    }
    assert q.cancel_all_upcoming_jobs(filters) == len(expected)
    cancelled = {k for k, v in made.items() if q.get_job(v).status == JobStatus.CANCELLED}
    assert cancelled == expected


# -- cleanup ------------------------------------------------------------------------------


def test_cleanup_old_jobs_deletes_only_old_completed_by_default(q: Any) -> None:
    q.add_job("open")
    a, b = q.add_job("a"), q.add_job("b")
    complete(q, claim_job(q, a, job_types=["a"]))
    complete(q, claim_job(q, b, job_types=["b"]))
    cancelled = q.add_job("c")
    q.cancel_job(cancelled)
    assert q.cleanup_old_jobs(1) == 0  # everything is recent
    time.sleep(0.02)
    assert q.cleanup_old_jobs(0) == 2
    assert q.get_job(a) is None and q.get_job(b) is None
    assert q.get_job_events(a) == []
    assert q.get_job(cancelled) is not None
    assert len(q.get_all_jobs()) == 2


def test_cleanup_old_jobs_with_statuses(q: Any) -> None:
    failed = q.add_job("f", max_attempts=1)
    fail_terminally(q, failed)
    cancelled = q.add_job("c")
    q.cancel_job(cancelled)
    retrying = q.add_job("r", max_attempts=3)
    fail(q, claim_job(q, retrying, job_types=["r"]), retry_delay_seconds=3600)
    time.sleep(0.02)
    assert q.cleanup_old_jobs(0, statuses=["failed", "cancelled"]) == 2
    assert q.get_job(failed) is None and q.get_job(cancelled) is None
    # a failed job that will still retry is not finished, so it is kept
    assert q.get_job(retrying) is not None


def test_cleanup_old_jobs_in_small_batches(q: Any) -> None:
    made = q.add_jobs([{"job_type": "t"} for _ in range(7)])
    for job in claim(q, 100):
        complete(q, job)
    time.sleep(0.02)
    assert q.cleanup_old_jobs(0, batch_size=2) == 7
    assert all(q.get_job(i) is None for i in made)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"statuses": ["pending"]},
        {"statuses": ["processing"]},
        {"statuses": []},
        {"statuses": ["finished"]},
        {"batch_size": 0},
        {"days_to_keep": -1},
        {"days_to_keep": 10**12},
    ],
)
def test_cleanup_old_jobs_rejects_bad_arguments(q: Any, kwargs: dict[str, Any]) -> None:
    args = {"days_to_keep": 0, **kwargs}
    with pytest.raises((InvalidFilterError, InvalidJobError)):
        q.cleanup_old_jobs(args.pop("days_to_keep"), **args)


def test_cleanup_old_job_events(q: Any) -> None:
    job_id = q.add_job("t")
    complete(q, claim_job(q, job_id))
    assert len(q.get_job_events(job_id)) == 3
    assert q.cleanup_old_job_events(1) == 0
    time.sleep(0.02)
    assert q.cleanup_old_job_events(0, batch_size=1) == 3
    assert q.get_job_events(job_id) == []
    assert q.get_job(job_id).status == JobStatus.COMPLETED
    assert q.cleanup_old_job_events(1_000_000) == 0  # the largest days_to_keep
    with pytest.raises(InvalidJobError, match="at most"):
        q.cleanup_old_job_events(10**12)


# -- reclaim ------------------------------------------------------------------------------


def test_reclaim_stuck_jobs(q: Any) -> None:
    job_id = q.add_job("t")
    claim_job(q, job_id)
    assert q.reclaim_stuck_jobs(10) == 0  # locked just now
    time.sleep(0.02)
    assert q.reclaim_stuck_jobs(0) == 1
    job = q.get_job(job_id)
    assert job.status == JobStatus.PENDING
    assert job.locked_by is None and job.locked_at is None
    assert claimed_ids(q) == [job_id]


def test_reclaim_honours_job_timeout(q: Any) -> None:
    long_job = q.add_job("long", timeout_ms=3_600_000)
    short_job = q.add_job("short", timeout_ms=1)
    claim(q)
    time.sleep(0.05)
    assert q.reclaim_stuck_jobs(0) == 1  # only the job past its own timeout
    assert q.get_job(long_job).status == JobStatus.PROCESSING
    assert q.get_job(short_job).status == JobStatus.PENDING


def test_reclaim_on_last_attempt_fails_with_worker_lost(q: Any) -> None:
    job_id = q.add_job("t", max_attempts=1, dead_letter_job_type="dlq")
    claim_job(q, job_id)
    time.sleep(0.02)
    assert q.reclaim_stuck_jobs(0) == 1
    job = q.get_job(job_id)
    assert job.status == JobStatus.FAILED
    assert job.failure_reason == FailureReason.WORKER_LOST
    assert job.next_attempt_at is None
    assert job.dead_letter_job_id is not None
    assert q.get_job(job.dead_letter_job_id).job_type == "dlq"


def test_reclaimed_job_fences_off_the_stale_worker(q: Any) -> None:
    job_id = q.add_job("t")
    stale = claim_job(q, job_id, worker_id="dead")
    time.sleep(0.02)
    q.reclaim_stuck_jobs(0)
    assert complete(q, stale) is False
    assert q.get_job(job_id).status == JobStatus.PENDING


def test_reclaim_respects_live_lease(q: Any) -> None:
    job_id = q.add_job("t")
    q._backend.claim_jobs("w", 1, lease=LEASE)
    assert q.reclaim_stuck_jobs(10) == 0
    assert q.get_job(job_id).status == JobStatus.PROCESSING


def test_heartbeat_keeps_a_live_job_from_being_reclaimed(q: Any) -> None:
    job_id = q.add_job("t")
    short = timedelta(milliseconds=300)
    q._backend.claim_jobs("w", 1, lease=short)
    for _ in range(3):
        time.sleep(0.15)
        assert q._backend.heartbeat("w", [job_id], short) == 1
        assert q.reclaim_stuck_jobs(60) == 0  # its lease was renewed before it lapsed
    assert q._backend.heartbeat("someone-else", [job_id], LEASE) == 0
    time.sleep(0.4)
    assert q.reclaim_stuck_jobs(60) == 1  # no heartbeat: the lapsed lease is reclaimed


def test_retry_delay_sets_next_attempt(q: Any) -> None:
    job_id = q.add_job("t")
    before = datetime.now(UTC)
    fail(q, claim_job(q, job_id), retry_delay_seconds=10)
    next_at = q.get_job(job_id).next_attempt_at
    assert before + timedelta(seconds=8) <= next_at <= datetime.now(UTC) + timedelta(seconds=12)


def test_retry_config_is_stored_and_editable(q: Any) -> None:
    plain = q.get_job(q.add_job("t"))
    assert (plain.retry_delay, plain.retry_backoff, plain.retry_delay_max) == (None, None, None)
    job_id = q.add_job("t", retry_delay=5, retry_backoff=True, retry_delay_max=30)
    assert q.edit_job(job_id, retry_delay=10, retry_backoff=False, retry_delay_max=None)
    job = q.get_job(job_id)
    assert (job.retry_delay, job.retry_backoff, job.retry_delay_max) == (10, False, None)


def test_cleanup_removes_tokens_of_deleted_jobs(q: Any) -> None:
    job_id = q.add_job("t")
    job = claim_job(q, job_id)
    token = q._backend.create_token(job_id, None, None)
    q._backend.wait_job(
        job_id, WORKER, job.lock_version, wait_until=None, token_id=token.id, step_data={}
    )
    assert q.complete_token(token.id, {"ok": True})
    complete(q, claim_job(q, job_id))
    standalone = q.create_token()
    time.sleep(0.02)
    assert q.cleanup_old_jobs(0) == 1
    assert q.get_token(token.id) is None  # its job is gone: the token went with it
    assert q.get_token(standalone.id) is not None  # still waiting: not an orphan
