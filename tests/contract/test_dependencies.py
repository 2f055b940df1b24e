"""Job dependencies (SPEC §4): validation, batch placeholders, eligibility, cascades."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _worker_helpers import WORKER, claim, claim_job, claimed_ids, complete, fail, fail_terminally
from dataqueue import (
    DependencyCycleError,
    DependencyError,
    DependsOn,
    InvalidJobError,
    JobEventType,
    JobStatus,
    UnknownPrerequisiteError,
    batch_dep_ref,
)

CASCADE = {"dependency_cascade": True}


def status(q: Any, job_id: int) -> JobStatus:
    return q.get_job(job_id).status  # type: ignore[no-any-return]


def cascade_metadata(q: Any, job_id: int) -> Any:
    cancelled = [e for e in q.get_job_events(job_id) if e.event_type == JobEventType.CANCELLED]
    assert len(cancelled) == 1, cancelled
    return cancelled[0].metadata


# -- validation at enqueue ----------------------------------------------------------------


def test_unknown_prerequisite_rejected_nothing_written(q: Any) -> None:
    existing = q.add_job("a")
    with pytest.raises(UnknownPrerequisiteError, match="987654"):
        q.add_job("b", depends_on={"job_ids": [existing, 987654]})
    assert [j.id for j in q.get_all_jobs()] == [existing]


def test_unknown_prerequisites_worded_alike_on_every_backend(q: Any) -> None:
    existing = q.add_job("a")
    with pytest.raises(UnknownPrerequisiteError) as info:
        q.add_job("b", depends_on={"job_ids": [987655, existing, 987654]})
    assert str(info.value) == "depends_on.job_ids: job id(s) 987654, 987655 do not exist"


def test_negative_id_rejected_in_add_job(q: Any) -> None:
    with pytest.raises(DependencyError, match="add_jobs"):
        q.add_job("b", depends_on=DependsOn(job_ids=[batch_dep_ref(0)]))
    assert q.get_all_jobs() == []


def test_reference_to_the_next_id_is_rejected(q: Any) -> None:
    # A single add_job cannot name its own (future) id: it is not an existing job yet.
    existing = q.add_job("a")
    with pytest.raises(DependencyError):
        q.add_job("b", depends_on={"job_ids": [existing + 1]})
    assert [j.id for j in q.get_all_jobs()] == [existing]


@pytest.mark.parametrize(
    "depends_on",
    [
        {"job_ids": [0]},
        {"job_ids": ["1"]},
        {"job_ids": [True]},
        {"ids": [1]},
        {"tags": [""]},
        {"job_ids": "1"},
        [1, 2],
    ],
)
def test_malformed_depends_on_rejected(q: Any, depends_on: Any) -> None:
    with pytest.raises(DependencyError):
        q.add_job("b", depends_on=depends_on)
    assert q.get_all_jobs() == []


def test_batch_dep_ref_rejects_bad_indexes() -> None:
    assert batch_dep_ref(0) == -1 and batch_dep_ref(4) == -5
    for bad in (-1, 1.5, "0", True):
        with pytest.raises(DependencyError):
            batch_dep_ref(bad)  # type: ignore[arg-type]


def test_batch_forward_and_backward_references(q: Any) -> None:
    ids = q.add_jobs(
        [
            {"job_type": "report", "depends_on": {"job_ids": [batch_dep_ref(1), batch_dep_ref(2)]}},
            {"job_type": "fetch"},
            {"job_type": "parse", "depends_on": {"job_ids": [batch_dep_ref(1)]}},
        ]
    )
    report, fetch, parse = ids
    assert q.get_job(report).depends_on_job_ids == (fetch, parse)
    assert q.get_job(parse).depends_on_job_ids == (fetch,)
    assert q.get_job(fetch).depends_on_job_ids is None
    assert claimed_ids(q) == [fetch]


def test_batch_mixes_existing_ids_and_placeholders(q: Any) -> None:
    existing = q.add_job("base")
    first, second = q.add_jobs(
        [
            {"job_type": "x", "depends_on": {"job_ids": [existing]}},
            {"job_type": "y", "depends_on": {"job_ids": [existing, batch_dep_ref(0)]}},
        ]
    )
    assert q.get_job(second).depends_on_job_ids == (existing, first)


def test_forward_reference_to_an_idempotent_hit_on_a_completed_job(q: Any) -> None:
    done = q.add_job("t", idempotency_key="k")
    complete(q, claim_job(q, done))
    ids = q.add_jobs(
        [
            {"job_type": "t", "depends_on": {"job_ids": [batch_dep_ref(1), batch_dep_ref(2)]}},
            {"job_type": "t"},
            {"job_type": "t", "idempotency_key": "k"},
        ]
    )
    assert ids[2] == done
    assert q.get_job(ids[0]).depends_on_job_ids == (ids[1], done)
    middle = claim_job(q, ids[1])  # the completed hit does not block; the new entry does
    assert claimed_ids(q) == []
    complete(q, middle)
    assert claimed_ids(q) == [ids[0]]


@pytest.mark.parametrize(
    "batch",
    [
        [{"job_type": "self", "depends_on": {"job_ids": [batch_dep_ref(0)]}}],
        [
            {"job_type": "a", "depends_on": {"job_ids": [batch_dep_ref(1)]}},
            {"job_type": "b", "depends_on": {"job_ids": [batch_dep_ref(2)]}},
            {"job_type": "c", "depends_on": {"job_ids": [batch_dep_ref(0)]}},
        ],
        [
            {"job_type": "ok"},
            {"job_type": "a", "depends_on": {"job_ids": [batch_dep_ref(2)]}},
            {"job_type": "b", "depends_on": {"job_ids": [batch_dep_ref(1), batch_dep_ref(0)]}},
        ],
    ],
    ids=["self", "three-cycle", "two-cycle-beside-valid-job"],
)
def test_batch_cycle_rejects_whole_batch(q: Any, batch: list[dict[str, Any]]) -> None:
    before = q.add_job("unrelated")
    with pytest.raises(DependencyCycleError):
        q.add_jobs(batch)
    assert [j.id for j in q.get_all_jobs()] == [before]
    assert q.get_jobs_by_status("pending")[0].id == before


def test_cycle_message_names_the_cycle(q: Any) -> None:
    batch = [
        {"job_type": "a", "depends_on": {"job_ids": [batch_dep_ref(1)]}},
        {"job_type": "b", "depends_on": {"job_ids": [batch_dep_ref(0)]}},
    ]
    with pytest.raises(DependencyCycleError) as info:
        q.add_jobs(batch)
    message = str(info.value)
    assert "0" in message and "1" in message


def test_batch_placeholder_out_of_range_rejected(q: Any) -> None:
    with pytest.raises(UnknownPrerequisiteError):
        q.add_jobs([{"job_type": "a"}, {"job_type": "b", "depends_on": {"job_ids": [-5]}}])
    assert q.get_all_jobs() == []


def test_batch_with_unknown_existing_id_writes_nothing(q: Any) -> None:
    with pytest.raises(UnknownPrerequisiteError):
        q.add_jobs(
            [
                {"job_type": "fine"},
                {"job_type": "b", "depends_on": {"job_ids": [batch_dep_ref(0), 55555]}},
            ]
        )
    assert q.get_all_jobs() == []


def test_invalid_job_in_dependency_batch_writes_nothing(q: Any) -> None:
    with pytest.raises(InvalidJobError):
        q.add_jobs(
            [
                {"job_type": "a"},
                {"job_type": "", "depends_on": {"job_ids": [batch_dep_ref(0)]}},
            ]
        )
    assert q.get_all_jobs() == []


# -- eligibility --------------------------------------------------------------------------


def test_dependent_waits_for_every_prerequisite(q: Any) -> None:
    a, b = q.add_job("a"), q.add_job("b")
    c = q.add_job("c", depends_on={"job_ids": [a, b]})
    job_a, job_b = claim_job(q, a, job_types=["a"]), claim_job(q, b, job_types=["b"])
    assert claimed_ids(q) == []
    complete(q, job_a)
    assert claimed_ids(q) == []
    complete(q, job_b)
    assert claimed_ids(q) == [c]


def test_dependent_of_completed_prerequisite_is_claimable_at_once(q: Any) -> None:
    a = q.add_job("a")
    complete(q, claim_job(q, a))
    b = q.add_job("b", depends_on={"job_ids": [a]})
    assert claimed_ids(q) == [b]


def test_dependent_stays_blocked_while_prerequisite_retries(q: Any) -> None:
    a = q.add_job("a", max_attempts=3)
    b = q.add_job("b", depends_on={"job_ids": [a]})
    fail(q, claim_job(q, a), retry_delay_seconds=0)
    assert status(q, b) == JobStatus.PENDING  # a retryable failure does not cascade
    assert claimed_ids(q) == [a]
    assert status(q, b) == JobStatus.PENDING


def test_tag_drain_waits_for_other_matching_jobs(q: Any) -> None:
    x = q.add_job("x", tags=["batch-1", "extra"])
    y = q.add_job("y", tags=["batch-1"])
    subset = q.add_job("z", tags=["batch"])  # does not carry every listed tag: no barrier
    drain = q.add_job("drain", tags=["batch-1"], depends_on={"tags": ["batch-1"]})
    claimed = {j.id: j for j in claim(q)}
    assert drain not in claimed and set(claimed) == {x, y, subset}
    assert q.get_job(drain).depends_on_tags == ("batch-1",)
    complete(q, claimed[x])
    assert claimed_ids(q) == []  # y is still processing
    complete(q, claimed[y])
    assert claimed_ids(q) == [drain]


def test_tag_drain_counts_jobs_added_later(q: Any) -> None:
    drain = q.add_job("drain", depends_on={"tags": ["t"]})
    late = q.add_job("late", tags=["t"])  # added after the dependent: still a barrier
    assert claimed_ids(q, job_types=["drain"]) == []
    complete(q, claim_job(q, late, job_types=["late"]))
    assert claimed_ids(q) == [drain]


def test_tag_drain_counts_waiting_jobs(q: Any) -> None:
    sleeper = q.add_job("sleeper", tags=["t"])
    drain = q.add_job("drain", depends_on={"tags": ["t"]})
    job = claim_job(q, sleeper)
    soon = datetime.now(timezone.utc) + timedelta(milliseconds=150)
    assert q._backend.wait_job(
        sleeper, WORKER, job.lock_version, wait_until=soon, token_id=None, step_data={}
    )
    assert status(q, sleeper) == JobStatus.WAITING
    assert claimed_ids(q, job_types=["drain"]) == []  # a waiting job still holds the drain
    time.sleep(0.3)
    complete(q, claim_job(q, sleeper))
    assert claimed_ids(q) == [drain]


def test_ids_and_tags_must_both_clear(q: Any) -> None:
    a = q.add_job("a")
    tagged = q.add_job("tagged", tags=["g"])
    both = q.add_job("both", depends_on={"job_ids": [a], "tags": ["g"]})
    job_tagged = claim_job(q, tagged, job_types=["tagged"])
    complete(q, claim_job(q, a, job_types=["a"]))
    assert claimed_ids(q) == []  # prerequisite done, but the tag barrier holds
    complete(q, job_tagged)
    assert claimed_ids(q) == [both]


def test_cleanup_of_completed_prerequisite_does_not_block(q: Any) -> None:
    a = q.add_job("a")
    b = q.add_job("b", depends_on={"job_ids": [a]})
    complete(q, claim_job(q, a))
    time.sleep(0.02)
    assert q.cleanup_old_jobs(0) == 1
    assert q.get_job(a) is None
    assert claimed_ids(q) == [b]


# -- cascades -----------------------------------------------------------------------------


def test_terminal_failure_cascades_transitively(q: Any) -> None:
    root = q.add_job("root", tags=["grp"], max_attempts=1)
    child = q.add_job("child", depends_on={"job_ids": [root]})
    grandchild = q.add_job("grandchild", depends_on={"job_ids": [child]})
    by_tag = q.add_job("by_tag", depends_on={"tags": ["grp"]})
    unrelated = q.add_job("unrelated")
    fail_terminally(q, root)
    assert status(q, root) == JobStatus.FAILED
    for job_id in (child, grandchild, by_tag):
        assert status(q, job_id) == JobStatus.CANCELLED, job_id
        meta = cascade_metadata(q, job_id)
        assert meta == {"root_job_id": root, **CASCADE}
        assert q.get_job(job_id).last_cancelled_at is not None
    assert status(q, unrelated) == JobStatus.PENDING


def test_retryable_failure_does_not_cascade(q: Any) -> None:
    root = q.add_job("root", tags=["grp"], max_attempts=2)
    child = q.add_job("child", depends_on={"job_ids": [root]})
    by_tag = q.add_job("by_tag", depends_on={"tags": ["grp"]})
    assert fail(q, claim_job(q, root)).will_retry
    assert status(q, child) == JobStatus.PENDING
    assert status(q, by_tag) == JobStatus.PENDING


def test_cancel_cascades_transitively(q: Any) -> None:
    root = q.add_job("root")
    child = q.add_job("child", depends_on={"job_ids": [root]})
    grandchild = q.add_job("grandchild", depends_on={"job_ids": [child]})
    assert q.cancel_job(root)
    assert cascade_metadata(q, root) is None
    for job_id in (child, grandchild):
        assert status(q, job_id) == JobStatus.CANCELLED
        assert cascade_metadata(q, job_id) == {"root_job_id": root, **CASCADE}


def test_cascade_reaches_batch_dependents(q: Any) -> None:
    root, mid, leaf = q.add_jobs(
        [
            {"job_type": "root", "max_attempts": 1},
            {"job_type": "mid", "depends_on": {"job_ids": [batch_dep_ref(0)]}},
            {"job_type": "leaf", "depends_on": {"job_ids": [batch_dep_ref(1)]}},
        ]
    )
    fail_terminally(q, root)
    assert status(q, mid) == status(q, leaf) == JobStatus.CANCELLED


def test_cascade_spares_finished_dependents(q: Any) -> None:
    root = q.add_job("root", max_attempts=1, tags=["grp"])
    done = q.add_job("done", tags=["x"])
    complete(q, claim_job(q, done, job_types=["done"]))
    child = q.add_job("child", depends_on={"job_ids": [root, done]})
    fail_terminally(q, root)
    assert status(q, done) == JobStatus.COMPLETED
    assert status(q, child) == JobStatus.CANCELLED


def test_editing_tags_moves_a_job_in_or_out_of_a_drain(q: Any) -> None:
    blocker = q.add_job("blocker", tags=["t"], run_at=datetime(2031, 1, 1, tzinfo=timezone.utc))
    drain = q.add_job("drain", depends_on={"tags": ["t"]})
    assert claimed_ids(q) == []
    assert q.edit_job(blocker, tags=["other"])  # no longer carries the drained tag
    assert claimed_ids(q) == [drain]
    late = q.add_job("late", run_at=datetime(2031, 1, 1, tzinfo=timezone.utc))
    drain2 = q.add_job("drain2", depends_on={"tags": ["t"]})
    assert q.edit_job(late, tags=["t", "x"])  # now it does: a barrier again
    assert claimed_ids(q) == []
    assert q.edit_job(late, tags=None)
    assert claimed_ids(q) == [drain2]


def test_cancelling_a_tagged_job_cascades_to_its_drain(q: Any) -> None:
    blocker = q.add_job("blocker", tags=["t"])
    drain = q.add_job("drain", depends_on={"tags": ["t"]})
    assert q.cancel_job(blocker)
    assert status(q, drain) == JobStatus.CANCELLED
    assert cascade_metadata(q, drain) == {"root_job_id": blocker, **CASCADE}


def test_worker_lost_on_last_attempt_cascades(q: Any) -> None:
    root = q.add_job("root", max_attempts=1)
    child = q.add_job("child", depends_on={"job_ids": [root]})
    claim_job(q, root)
    time.sleep(0.02)
    assert q.reclaim_stuck_jobs(0) == 1
    assert status(q, root) == JobStatus.FAILED
    assert status(q, child) == JobStatus.CANCELLED
    assert cascade_metadata(q, child) == {"root_job_id": root, **CASCADE}


def test_retrying_a_failed_prerequisite_does_not_revive_dependents(q: Any) -> None:
    root = q.add_job("root", max_attempts=1)
    child = q.add_job("child", depends_on={"job_ids": [root]})
    fail_terminally(q, root)
    assert q.retry_job(root)
    assert status(q, child) == JobStatus.CANCELLED
    complete(q, claim_job(q, root))
    assert status(q, child) == JobStatus.CANCELLED
    assert claimed_ids(q) == []


def test_long_chain_resolves_in_order(q: Any) -> None:
    ids = q.add_jobs(
        [{"job_type": "step"}]
        + [{"job_type": "step", "depends_on": {"job_ids": [batch_dep_ref(i)]}} for i in range(9)]
    )
    order = []
    while got := claim(q, 10):
        assert len(got) == 1  # each step waits for the one before
        order.append(got[0].id)
        complete(q, got[0])
    assert order == ids


def test_diamond_waits_for_both_branches(q: Any) -> None:
    top, left, right, bottom = q.add_jobs(
        [
            {"job_type": "top"},
            {"job_type": "left", "depends_on": {"job_ids": [batch_dep_ref(0)]}},
            {"job_type": "right", "depends_on": {"job_ids": [batch_dep_ref(0)]}},
            {"job_type": "bottom", "depends_on": {"job_ids": [batch_dep_ref(1), batch_dep_ref(2)]}},
        ]
    )
    complete(q, claim_job(q, top))
    branches = {j.id: j for j in claim(q)}
    assert set(branches) == {left, right}
    complete(q, branches[left])
    assert claimed_ids(q) == []
    complete(q, branches[right])
    assert claimed_ids(q) == [bottom]
