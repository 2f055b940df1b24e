"""Backend primitives, on every backend and twin: concurrent claims, group caps, fencing,
cascades, dependency counters, waits and tokens, reclaim, cron exactly-once (moved here from
tests/postgres: behaviour is tested once, for every store)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _worker_helpers import run_threads
from dataqueue import batch_dep_ref
from dataqueue.backends.types import CronInput
from dataqueue.errors import UnknownPrerequisiteError
from dataqueue.lifecycle import plan_failure
from dataqueue.options import normalize_job
from dataqueue.records import FailureReason, JobEventType, JobRecord, JobStatus

LEASE = timedelta(seconds=30)


@pytest.fixture
def backend(q: Any) -> Any:
    """The queue's backend (bridged to blocking calls on the async twin)."""
    return q._backend


def add(backend: Any, job_type: str = "t", **options: Any) -> int:
    """Enqueue one job through the backend; return its id."""
    return int(backend.add_jobs([normalize_job({"job_type": job_type, **options})])[0].id)


def claim_one(backend: Any, worker: str = "w", **options: Any) -> JobRecord:
    """Claim exactly one job (fails the test if none is claimable)."""
    jobs = backend.claim_jobs(worker, 1, lease=LEASE, **options)
    assert len(jobs) == 1, f"expected one claimable job, got {jobs}"
    return jobs[0]  # type: ignore[no-any-return]


def test_claim_options_no_slots_or_an_empty_type_list_claim_nothing(backend: Any) -> None:
    # ClaimOptions: job_types=None claims any type, an empty list none; limit 0 claims none.
    job_id = add(backend, "t")
    assert backend.claim_jobs("w", 5, lease=LEASE, job_types=[]) == []
    assert backend.claim_jobs("w", 0, lease=LEASE) == []
    assert [j.id for j in backend.claim_jobs("w", 5, lease=LEASE, job_types=None)] == [job_id]


def test_concurrent_claimers_never_share_a_job(backend: Any) -> None:
    ids = [a.id for a in backend.add_jobs([normalize_job({"job_type": "t"})] * 300)]
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        while True:
            jobs = backend.claim_jobs(f"w{i}", 7, lease=LEASE)
            if not jobs:
                return
            with lock:
                claimed.extend(j.id for j in jobs)

    run_threads(6, worker)
    assert sorted(claimed) == sorted(ids)  # each exactly once
    assert not [i for i, c in Counter(claimed).items() if c > 1]


def test_claim_order_priority_then_fifo(backend: Any) -> None:
    low = add(backend, priority=0)
    high_first = add(backend, priority=5)
    high_second = add(backend, priority=5)
    batch = [a.id for a in backend.add_jobs([normalize_job({"job_type": "t"})] * 3)]
    jobs = backend.claim_jobs("w", 10, lease=LEASE)
    assert [j.id for j in jobs] == [high_first, high_second, low, *batch]
    assert all(j.attempts == 1 and j.lock_version == 1 and j.locked_by == "w" for j in jobs)
    assert all(j.lease_expires_at is not None for j in jobs)


def test_group_cap_does_not_starve_other_jobs(backend: Any) -> None:
    grouped = [a.id for a in backend.add_jobs([normalize_job({"job_type": "t", "group": "g",
                                                              "priority": 9})] * 30)]  # fmt: skip
    free = add(backend, priority=0)
    jobs = backend.claim_jobs("w", 5, lease=LEASE, group_concurrency=1)
    assert [j.id for j in jobs] == [grouped[0], free]


def test_fencing_discards_a_stale_worker(backend: Any) -> None:
    job_id = add(backend)
    stale = claim_one(backend, "old")
    assert backend.retry_job(job_id)  # processing → pending; the old worker is fenced off
    fresh = claim_one(backend, "new")
    assert fresh.lock_version == stale.lock_version + 2
    assert not backend.complete_job(job_id, "old", stale.lock_version, "stale")
    plan = plan_failure(stale, "x", None, retry_delay_seconds=0)
    assert not backend.fail_job(job_id, "old", stale.lock_version, plan).applied
    assert not backend.wait_job(job_id, "old", stale.lock_version, wait_until=None,
                                token_id="wp_x", step_data={})  # fmt: skip
    assert not backend.prolong_job(job_id, "old", stale.lock_version, LEASE)
    assert backend.heartbeat("old", [job_id], LEASE) == 0
    assert not backend.complete_job(job_id, "new", stale.lock_version, "wrong version")
    assert backend.heartbeat("new", [job_id], LEASE) == 1
    assert backend.prolong_job(job_id, "new", fresh.lock_version, LEASE)
    assert backend.complete_job(job_id, "new", fresh.lock_version, {"ok": 1})
    job = backend.get_job(job_id)
    assert job is not None and job.status == JobStatus.COMPLETED and job.output == {"ok": 1}
    kinds = [e.event_type for e in backend.get_job_events(job_id)]
    assert kinds.count(JobEventType.COMPLETED) == 1 and kinds.count(JobEventType.FAILED) == 0


def test_transitive_cascade_by_ids_and_tag_drains(backend: Any) -> None:
    root = add(backend, max_attempts=1, tags=["etl", "daily"])
    by_id = add(backend, depends_on={"job_ids": [root]})
    grandchild = add(backend, depends_on={"job_ids": [by_id]})
    drain = add(backend, depends_on={"tags": ["etl"]}, tags=["report"])
    after_drain = add(backend, depends_on={"tags": ["report"]})
    unrelated = add(backend, depends_on={"tags": ["other"]})
    job = claim_one(backend)
    assert job.id == root
    # A failure that will retry must not cascade; this one is terminal (max_attempts=1).
    plan = plan_failure(job, "boom", FailureReason.HANDLER_ERROR, retry_delay_seconds=0)
    outcome = backend.fail_job(root, "w", job.lock_version, plan)
    assert outcome.applied and not outcome.will_retry
    for victim in (by_id, grandchild, drain, after_drain):
        record = backend.get_job(victim)
        assert record is not None and record.status == JobStatus.CANCELLED, victim
        cancelled = [e for e in backend.get_job_events(victim)
                     if e.event_type == JobEventType.CANCELLED]  # fmt: skip
        assert [e.metadata for e in cancelled] == [{"root_job_id": root,
                                                    "dependency_cascade": True}]  # fmt: skip
    other = backend.get_job(unrelated)
    assert other is not None and other.status == JobStatus.PENDING


def test_retrying_failure_does_not_cascade(backend: Any) -> None:
    root = add(backend, max_attempts=2)
    child = add(backend, depends_on={"job_ids": [root]})
    job = claim_one(backend)
    plan = plan_failure(job, "boom", None, retry_delay_seconds=60)
    assert backend.fail_job(root, "w", job.lock_version, plan).will_retry
    record = backend.get_job(child)
    assert record is not None and record.status == JobStatus.PENDING


def test_cancel_cascades_in_one_transaction(backend: Any) -> None:
    ids = [a.id for a in backend.add_jobs([
        normalize_job({"job_type": "a"}),
        normalize_job({"job_type": "b", "depends_on": {"job_ids": [batch_dep_ref(0)]}}),
        normalize_job({"job_type": "c", "depends_on": {"job_ids": [batch_dep_ref(1)]}}),
    ])]  # fmt: skip
    assert backend.cancel_job(ids[0])
    assert not backend.cancel_job(ids[0])  # no-op: no second event
    statuses = [backend.get_job(i).status for i in ids]  # type: ignore[union-attr]
    assert statuses == [JobStatus.CANCELLED] * 3
    assert [e.event_type for e in backend.get_job_events(ids[0])] == [
        JobEventType.ADDED, JobEventType.CANCELLED,
    ]  # fmt: skip


def test_dependent_added_while_its_prerequisite_completes_is_released(
    backend: Any,
) -> None:
    # The adder locks the prerequisite while counting it; the completion either waits and
    # then releases the new dependent, or goes first and the adder counts it as completed.
    for _ in range(25):
        prereq = add(backend, job_type="p")
        job = claim_one(backend, job_types=["p"])
        added: list[int] = []

        def run(i: int, job: Any = job, prereq: int = prereq, added: list[int] = added) -> None:
            if i == 0:
                added.append(add(backend, job_type="d", depends_on={"job_ids": [prereq]}))
            else:
                assert backend.complete_job(prereq, "w", job.lock_version)

        run_threads(2, run)
        dependent = claim_one(backend, job_types=["d"])
        assert dependent.id == added[0]
        assert backend.complete_job(dependent.id, "w", dependent.lock_version)


def test_dependents_of_a_dead_prerequisite_are_cancelled_at_once(
    backend: Any,
) -> None:
    dead = add(backend)
    assert backend.cancel_job(dead)
    ids = [a.id for a in backend.add_jobs([
        normalize_job({"job_type": "a", "depends_on": {"job_ids": [dead]}}),
        normalize_job({"job_type": "b", "depends_on": {"job_ids": [batch_dep_ref(0)]}}),
        normalize_job({"job_type": "c"}),
    ])]  # fmt: skip
    statuses = [backend.get_job(i).status for i in ids]  # type: ignore[union-attr]
    assert statuses == [JobStatus.CANCELLED, JobStatus.CANCELLED, JobStatus.PENDING]


def test_unknown_prerequisite_writes_nothing(backend: Any) -> None:
    first = add(backend)
    with pytest.raises(UnknownPrerequisiteError, match="999"):
        backend.add_jobs([
            normalize_job({"job_type": "a"}),
            normalize_job({"job_type": "b", "depends_on": {"job_ids": [first, 999]}}),
        ])  # fmt: skip
    assert [j.id for j in backend.get_all_jobs(100, 0)] == [first]


def test_idempotency_with_placeholders(backend: Any) -> None:
    existing = add(backend, idempotency_key="k1")
    results = backend.add_jobs([
        normalize_job({"job_type": "a", "idempotency_key": "k1"}),
        normalize_job({"job_type": "b", "depends_on": {"job_ids": [batch_dep_ref(0)]}}),
        normalize_job({"job_type": "c", "idempotency_key": "k2"}),
        normalize_job({"job_type": "d", "idempotency_key": "k2"}),
    ])  # fmt: skip
    assert results[0].id == existing and not results[0].created
    assert results[2].id == results[3].id and results[2].created and not results[3].created
    dependent = backend.get_job(results[1].id)
    assert dependent is not None and dependent.depends_on_job_ids == (existing,)


def test_token_wait_resumes_without_consuming_an_attempt(backend: Any) -> None:
    job_id = add(backend, max_attempts=1)
    job = claim_one(backend)
    token = backend.create_token(job_id, timedelta(hours=1), ("t",))
    assert token.id.startswith("wp_") and token.timeout_at is not None
    assert backend.wait_job(job_id, "w", job.lock_version, wait_until=None, token_id=token.id,
                            step_data={"__wait_0": {"type": "token"}})  # fmt: skip
    assert backend.claim_jobs("w", 10, lease=LEASE) == []
    assert backend.complete_token(token.id, '{"ok": true}')
    assert not backend.complete_token(token.id, None)  # already completed
    waiting = backend.get_job(job_id)
    assert waiting is not None and waiting.status == JobStatus.PENDING
    resumed = claim_one(backend)
    assert resumed.id == job_id and resumed.attempts == 1  # no attempt consumed
    assert resumed.step_data == {"__wait_0": {"type": "token"}}
    assert backend.complete_job(job_id, "w", resumed.lock_version)


def test_time_wait_and_expired_token_resume_without_attempts(backend: Any) -> None:
    job_id = add(backend, max_attempts=1)
    job = claim_one(backend)
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert backend.wait_job(job_id, "w", job.lock_version, wait_until=past, token_id=None,
                            step_data={})  # fmt: skip
    resumed = claim_one(backend)
    assert resumed.attempts == 1
    token = backend.create_token(None, timedelta(milliseconds=1), None)
    assert backend.wait_job(job_id, "w", resumed.lock_version, wait_until=None,
                            token_id=token.id, step_data={})  # fmt: skip
    time.sleep(0.01)
    assert backend.expire_timed_out_tokens() == 1
    stored = backend.get_token(token.id)
    assert stored is not None and stored.status == "timed_out"
    again = claim_one(backend)
    assert again.id == job_id and again.attempts == 1


def test_waiting_on_an_already_completed_token_resumes_at_once(backend: Any) -> None:
    job_id = add(backend)
    job = claim_one(backend)
    token = backend.create_token(None, None, None)
    assert backend.complete_token(token.id, None)
    assert backend.wait_job(job_id, "w", job.lock_version, wait_until=None, token_id=token.id,
                            step_data={})  # fmt: skip
    resumed = claim_one(backend)
    assert resumed.id == job_id and resumed.attempts == 1


def test_cron_occurrence_enqueued_exactly_once(backend: Any) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    schedules = [
        backend.add_cron_job(CronInput(
            schedule_name=f"s{i}", cron_expression="* * * * *", job_type="cron",
            payload_json="{}", max_attempts=1, priority=0, timeout_ms=None,
            force_kill_on_timeout=False, tags=None, timezone="UTC", allow_overlap=True,
            retry_delay=None, retry_backoff=None, retry_delay_max=None,
            dead_letter_job_type=None, next_run_at=past,
        ))
        for i in range(3)
    ]  # fmt: skip
    counts: list[int] = []
    lock = threading.Lock()

    def next_run(record: Any, now: datetime) -> datetime:
        time.sleep(0.005)  # widen the race window
        return now + timedelta(hours=1)

    def caller(i: int) -> None:
        n = backend.enqueue_due_cron_jobs(next_run)
        with lock:
            counts.append(n)

    run_threads(6, caller)
    assert sum(counts) == 3
    jobs = backend.get_jobs_by_status(JobStatus.PENDING, 100, 0)
    assert len(jobs) == 3
    for cron_id in schedules:
        record = backend.get_cron_job(cron_id)
        assert record is not None and record.last_job_id in {j.id for j in jobs}
    assert backend.enqueue_due_cron_jobs(next_run) == 0


def test_awkward_strings_round_trip_in_filters(backend: Any) -> None:
    from dataqueue.options import JobFilters

    odd = ["it's", '50% "off"', "back\\slash", "{brace}", "comma,tag", "NULL"]
    job_id = add(backend, job_type='ty"pe%\\', tags=odd)
    job = backend.get_job(job_id)
    assert job is not None and job.tags == tuple(odd) and job.job_type == 'ty"pe%\\'
    for mode in ("all", "any", "exact"):
        found = backend.get_jobs(JobFilters.parse({"job_type": 'ty"pe%\\',
                                                   "tags": {"values": odd, "mode": mode}}),
                                 10, 0, None)  # fmt: skip
        assert [j.id for j in found] == [job_id], mode
    assert backend.get_jobs_by_tags(["NULL"], "exact", 10, 0) == []
    untagged = add(backend)
    assert [j.id for j in backend.get_jobs_by_tags(["x"], "none", 10, 0)] == [untagged, job_id]
