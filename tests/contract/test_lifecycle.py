"""The job state machine, cell by cell, on every backend and twin.

Each job status x each operation of ``dataqueue.lifecycle.TRANSITIONS``: accepted or refused as
the table says, the resulting status, the event written (or none when refused), and the hooks
the queue facade fires. Below the matrix: what each transition does to dependents, and the
cases where the two backends once disagreed (issue 9).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from _worker_helpers import LEASE, WORKER, claim_job, claimed_ids, complete, fail
from dataqueue import DependencyCycleError, JobStatus, batch_dep_ref
from dataqueue.lifecycle import (
    TRANSITIONS,
    FailureReason,
    Operation,
    plan_failure,
    transition_table_markdown,
)

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[2]


# -- bringing a job into each status ------------------------------------------------------------
def _in_status(q: Any, status: JobStatus) -> int:
    """A job of type ``t`` in ``status``; a ``failed`` one has a retry due now, a ``waiting``
    one a time wait that is already due (both claimable, as the table's claim row says)."""
    if status is JobStatus.FAILED:
        job_id = q.add_job("t", {}, max_attempts=2)
        assert fail(q, claim_job(q, job_id), retry_delay_seconds=0.0).will_retry
        return int(job_id)
    job_id = q.add_job("t", {})
    if status is JobStatus.PENDING:
        return int(job_id)
    if status is JobStatus.CANCELLED:
        assert q.cancel_job(job_id)
        return int(job_id)
    job = claim_job(q, job_id)
    if status is JobStatus.COMPLETED:
        assert complete(q, job)
    elif status is JobStatus.WAITING:
        past = datetime.now(UTC) - timedelta(seconds=1)
        assert q._backend.wait_job(
            job.id, WORKER, job.lock_version, wait_until=past, token_id=None, step_data={}
        )
    return int(job_id)


def _apply(q: Any, op: Operation, job_id: int) -> None:
    """Run ``op`` on the job as its worker (when it has one) would."""
    job = q.get_job(job_id)
    b = q._backend
    plan = plan_failure(job, "boom", FailureReason.HANDLER_ERROR, retry_delay_seconds=3600)
    if op is Operation.CLAIM:
        claimed_ids(q, 10, job_types=["t"])
    elif op is Operation.COMPLETE:
        b.complete_job(job.id, WORKER, job.lock_version)
    elif op is Operation.FAIL:
        b.fail_job(job.id, WORKER, job.lock_version, plan)
    elif op is Operation.FAIL_UNFENCED:
        b.fail_job(job.id, None, job.lock_version, plan)
    elif op is Operation.WAIT:
        later = datetime.now(UTC) + timedelta(hours=1)
        b.wait_job(job.id, WORKER, job.lock_version, wait_until=later, token_id=None, step_data={})
    elif op is Operation.PROLONG:
        b.prolong_job(job.id, WORKER, job.lock_version, LEASE)
    elif op is Operation.HEARTBEAT:
        b.heartbeat(WORKER, [job.id], LEASE)
    elif op is Operation.RECLAIM:
        b.requeue_jobs([(job.id, job.lock_version)])
    elif op is Operation.RETRY:
        q.retry_job(job.id)
    elif op is Operation.CANCEL:
        q.cancel_job(job.id)
    elif op is Operation.EDIT:
        q.edit_job(job.id, priority=7)
    else:  # pragma: no cover - every operation is listed above
        raise AssertionError(op)


_RESULT: dict[Operation, JobStatus | None] = {
    Operation.CLAIM: JobStatus.PROCESSING,
    Operation.COMPLETE: JobStatus.COMPLETED,
    Operation.FAIL: JobStatus.FAILED,
    Operation.FAIL_UNFENCED: JobStatus.FAILED,
    Operation.WAIT: JobStatus.WAITING,
    Operation.PROLONG: JobStatus.PROCESSING,
    Operation.HEARTBEAT: JobStatus.PROCESSING,
    Operation.RECLAIM: JobStatus.PENDING,
    Operation.RETRY: JobStatus.PENDING,
    Operation.CANCEL: JobStatus.CANCELLED,
    Operation.EDIT: JobStatus.PENDING,
}
_FACADE_HOOKS = {Operation.RETRY: "job:retried", Operation.CANCEL: "job:cancelled"}
_MATRIX = [(op, st) for op in _RESULT for st in JobStatus]


@pytest.mark.parametrize(
    ("op", "status"), _MATRIX, ids=[f"{o.value}-{s.value}" for o, s in _MATRIX]
)
def test_transition_cell(q: Any, op: Operation, status: JobStatus) -> None:
    job_id = _in_status(q, status)
    before = q.get_job(job_id)
    assert before.status is status
    events_before = q.get_job_events(job_id)
    fired: list[dict[str, Any]] = []
    if op in _FACADE_HOOKS:
        q.on(_FACADE_HOOKS[op], fired.append)
    _apply(q, op, job_id)
    after = q.get_job(job_id)
    new_events = q.get_job_events(job_id)[len(events_before) :]
    transition = TRANSITIONS[op]
    if status in transition.accepts:
        assert after.status is _RESULT[op], f"{op.value} from {status.value}"
        assert [e.event_type for e in new_events] == list(transition.events)
        if op in _FACADE_HOOKS:
            assert [p["job_id"] for p in fired] == [job_id]
        if op is Operation.EDIT:
            assert after.priority == 7
        if op is Operation.RETRY:
            assert after.attempts == 0
    else:
        assert after.status is status, f"{op.value} from {status.value} must be refused"
        assert new_events == []
        assert fired == []
        assert after.lock_version == before.lock_version
        assert after.attempts == before.attempts


def _token_waiter(q: Any, token_id: str) -> int:
    job_id = q.add_job("t", {})
    job = claim_job(q, job_id)
    assert q._backend.wait_job(
        job.id, WORKER, job.lock_version, wait_until=None, token_id=token_id, step_data={}
    )
    return int(job_id)


@pytest.mark.parametrize("status", list(JobStatus), ids=[s.value for s in JobStatus])
def test_resume_cell(q: Any, status: JobStatus) -> None:
    """The resume row: finishing a token resumes only jobs waiting on it."""
    token = q.create_token()
    waiter = status is JobStatus.WAITING
    job_id = _token_waiter(q, token.id) if waiter else _in_status(q, status)
    assert q.complete_token(token.id, {"ok": 1})
    after = q.get_job(job_id)
    if status in TRANSITIONS[Operation.RESUME].accepts:
        assert after.status is JobStatus.PENDING
        resumed = claim_job(q, job_id)
        assert resumed.attempts == 1  # the resumed claim used no attempt
    else:
        assert after.status is status


# -- dependents -----------------------------------------------------------------------------------
def test_complete_releases_dependents(q: Any) -> None:
    parent = q.add_job("t", {})
    child = q.add_job("u", {}, depends_on={"job_ids": [parent]})
    assert claimed_ids(q, 10, job_types=["u"]) == []
    assert complete(q, claim_job(q, parent))
    assert claimed_ids(q, 10, job_types=["u"]) == [child]


@pytest.mark.parametrize("how", ["terminal_fail", "cancel", "reclaim_exhausted"])
def test_ends_that_cascade(q: Any, how: str) -> None:
    parent = q.add_job("t", {}, max_attempts=1)
    child = q.add_job("u", {}, depends_on={"job_ids": [parent]})
    grandchild = q.add_job("u", {}, depends_on={"job_ids": [child]})
    if how == "terminal_fail":
        assert not fail(q, claim_job(q, parent)).will_retry
    elif how == "cancel":
        assert q.cancel_job(parent)
    else:
        job = claim_job(q, parent)
        q._backend.heartbeat(WORKER, [job.id], timedelta(milliseconds=1))
        time.sleep(0.05)
        assert q.reclaim_stuck_jobs(60) == 1
        lost = q.get_job(parent)
        assert lost.failure_reason is FailureReason.WORKER_LOST
    for victim in (child, grandchild):
        assert q.get_job(victim).status is JobStatus.CANCELLED


def test_retrying_failure_does_not_cascade(q: Any) -> None:
    parent = q.add_job("t", {}, max_attempts=2)
    child = q.add_job("u", {}, depends_on={"job_ids": [parent]})
    assert fail(q, claim_job(q, parent), retry_delay_seconds=60).will_retry
    assert q.get_job(child).status is JobStatus.PENDING


# -- the cases where the backends once disagreed --------------------------------------------------
@pytest.mark.parametrize("end", ["cancelled", "failed"])
def test_dependent_of_a_dead_prerequisite_is_cancelled_at_once(q: Any, end: str) -> None:
    dead = q.add_job("t", {}, max_attempts=1)
    if end == "cancelled":
        assert q.cancel_job(dead)
    else:
        assert not fail(q, claim_job(q, dead)).will_retry
    ids = q.add_jobs(
        [
            {"job_type": "u", "payload": {}, "depends_on": {"job_ids": [dead]}},
            {"job_type": "u", "payload": {}, "depends_on": {"job_ids": [batch_dep_ref(0)]}},
        ]
    )
    for job_id in ids:
        record = q.get_job(job_id)
        assert record.status is JobStatus.CANCELLED, record
    events = [e.event_type.value for e in q.get_job_events(ids[0])]
    assert events == ["added", "cancelled"]


@pytest.mark.parametrize("finish", ["complete", "expire"])
def test_job_parked_on_a_standalone_token_resumes(q: Any, finish: str) -> None:
    token = q.create_token(timeout="1s") if finish == "expire" else q.create_token()
    job_id = _token_waiter(q, token.id)
    other = _token_waiter(q, token.id)  # a standalone token may have many waiters
    assert q.get_job(job_id).status is JobStatus.WAITING
    if finish == "complete":
        assert q.complete_token(token.id, {"approved": True})
    else:
        time.sleep(1.1)
        assert q.expire_timed_out_tokens() == 1
    for waiter in (job_id, other):
        assert q.get_job(waiter).status is JobStatus.PENDING
        assert claim_job(q, waiter).attempts == 1


def test_self_dependency_through_an_idempotency_key_is_a_cycle(q: Any) -> None:
    with pytest.raises(DependencyCycleError, match="job 1 of the batch depends on itself"):
        q.add_jobs(
            [
                {"job_type": "t", "payload": {}, "idempotency_key": "k"},
                {
                    "job_type": "t",
                    "payload": {},
                    "idempotency_key": "k",
                    "depends_on": {"job_ids": [batch_dep_ref(0)]},
                },
            ]
        )
    assert q.get_all_jobs() == []


def test_unfenced_failure_of_a_waiting_job_is_accepted(q: Any) -> None:
    job_id = _in_status(q, JobStatus.WAITING)
    job = q.get_job(job_id)
    plan = plan_failure(job, "stop", None, retry_delay_seconds=0)
    outcome = q._backend.fail_job(job.id, None, job.lock_version, plan)
    assert outcome.applied
    assert q.get_job(job_id).status is JobStatus.FAILED


def test_cleanup_events_batch_counts_events(q: Any) -> None:
    job_id = q.add_job("t", {})
    q.edit_job(job_id, priority=1)
    q.edit_job(job_id, priority=2)  # three events: added, edited, edited
    time.sleep(0.01)
    assert q._backend.cleanup_old_job_events(0, 2) == 2
    assert len(q.get_job_events(job_id)) == 1
    assert q._backend.cleanup_old_job_events(0, 2) == 1
    assert q.get_job_events(job_id) == []


# -- the table is the one in the docs -------------------------------------------------------------
def test_docs_table_is_rendered_from_lifecycle() -> None:
    doc = (ROOT / "docs" / "lifecycle.md").read_text()
    assert transition_table_markdown() in doc, "run: python tools/gen_lifecycle_doc.py"


def test_every_operation_is_covered() -> None:
    assert set(_RESULT) | {Operation.RESUME} == set(TRANSITIONS)


def test_failure_text_a_store_cannot_hold_is_escaped(q: Any) -> None:
    """An exception message is not validated input: a NUL or lone surrogate in it must not make
    the failure itself fail (PostgreSQL's jsonb refuses both)."""
    job = claim_job(q, q.add_job("t", {}, max_attempts=1, dead_letter_job_type="dead"))
    text = "bad\x00byte \ud800 half"
    plan = plan_failure(job, text, FailureReason.HANDLER_ERROR, retry_delay_seconds=0,
                        details={"traceback": text})  # fmt: skip
    assert q._backend.fail_job(job.id, WORKER, job.lock_version, plan).applied
    stored = q.get_job(job.id)
    entry = stored.error_history[-1]
    assert entry["message"] == entry["traceback"] == "bad\\x00byte \\ud800 half"
    dead = q.get_job(stored.dead_letter_job_id)
    assert dead.payload["failure"]["message"] == "bad\\x00byte \\ud800 half"
