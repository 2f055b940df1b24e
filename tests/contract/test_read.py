"""Reads: by status, all, filters, tags, cursor pagination; every field on every list query."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _worker_helpers import claim_job, complete
from dataqueue import InvalidFilterError, JobStatus

UTC = timezone.utc
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def ids(jobs: list[Any]) -> list[int]:
    return [j.id for j in jobs]


def test_get_jobs_by_status_newest_first(q: Any) -> None:
    a = q.add_job("first")
    b, c = q.add_job("t"), q.add_job("t")
    claim_job(q, a, job_types=["first"])
    assert ids(q.get_jobs_by_status("pending")) == [c, b]
    assert ids(q.get_jobs_by_status(JobStatus.PROCESSING)) == [a]
    assert q.get_jobs_by_status("completed") == []


def test_get_jobs_by_status_rejects_unknown_status(q: Any) -> None:
    with pytest.raises(InvalidFilterError):
        q.get_jobs_by_status("finished")


def test_get_all_jobs_and_pagination(q: Any) -> None:
    made = [q.add_job("t", {"i": i}) for i in range(5)]
    all_jobs = q.get_all_jobs()
    assert sorted(ids(all_jobs)) == sorted(made)
    assert ids(all_jobs) == sorted(made, reverse=True)  # newest first
    page1, page2, page3 = q.get_all_jobs(2, 0), q.get_all_jobs(2, 2), q.get_all_jobs(2, 4)
    assert ids(page1) + ids(page2) + ids(page3) == ids(all_jobs)
    assert q.get_all_jobs(10, 5) == []
    assert q.get_all_jobs(0) == []


@pytest.mark.parametrize("bad", [{"limit": -1}, {"offset": -1}, {"limit": "10"}])
def test_bad_paging_rejected(q: Any, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidFilterError):
        q.get_all_jobs(**bad)


def test_default_limit_is_100(q: Any) -> None:
    q.add_jobs([{"job_type": "t"} for _ in range(105)])
    assert len(q.get_all_jobs()) == 100
    assert len(q.get_jobs_by_status("pending")) == 100
    assert len(q.get_jobs()) == 100
    assert len(q.get_all_jobs(200)) == 105


def test_every_list_query_returns_every_field(q: Any) -> None:
    job_id = q.add_job(
        "full",
        {"p": 1},
        tags=["t1", "t2"],
        force_kill_on_timeout=True,
        timeout_ms=1000,
        idempotency_key="full-1",
        retry_delay=3,
        group="g",
        priority=2,
    )
    reference = q.get_job(job_id)
    listed = [
        q.get_jobs_by_status("pending")[0],
        q.get_all_jobs()[0],
        q.get_jobs()[0],
        q.get_jobs({"job_type": "full"})[0],
        q.get_jobs_by_tags(["t1"])[0],
        q.get_jobs_by_tags(["t1", "t2"], mode="exact")[0],
    ]
    for record in listed:
        assert dataclasses.asdict(record) == dataclasses.asdict(reference)


def test_get_jobs_filters(q: Any) -> None:
    a = q.add_job("email", priority=1, run_at=T0, tags=["x", "y"])
    b = q.add_job("email", priority=2, run_at=T0 + timedelta(hours=1), tags=["x"])
    c = q.add_job("sms", priority=1, run_at=T0 + timedelta(hours=2))
    assert ids(q.get_jobs()) == [c, b, a]  # newest id first
    assert ids(q.get_jobs({"job_type": "email"})) == [b, a]
    assert ids(q.get_jobs({"job_type": ""})) == [c, b, a]  # empty job_type is no filter
    assert ids(q.get_jobs({"priority": 1})) == [c, a]
    assert ids(q.get_jobs({"run_at": T0})) == [a]
    assert ids(q.get_jobs({"run_at": {"eq": T0}})) == [a]
    assert ids(q.get_jobs({"run_at": {"gt": T0}})) == [c, b]
    assert ids(q.get_jobs({"run_at": {"gte": T0 + timedelta(hours=1)}})) == [c, b]
    assert ids(q.get_jobs({"run_at": {"lt": T0 + timedelta(hours=1)}})) == [a]
    assert ids(q.get_jobs({"run_at": {"lte": T0 + timedelta(hours=1)}})) == [b, a]
    window = {"gt": T0, "lt": T0 + timedelta(hours=2)}
    assert ids(q.get_jobs({"run_at": window})) == [b]
    assert ids(q.get_jobs({"tags": {"values": ["x"]}})) == [b, a]
    assert ids(q.get_jobs({"tags": {"values": ["x", "y"], "mode": "all"}})) == [a]
    assert ids(q.get_jobs({"tags": {"values": ["y", "z"], "mode": "any"}})) == [a]
    assert ids(q.get_jobs({"tags": {"values": ["y"], "mode": "none"}})) == [c, b]
    assert ids(q.get_jobs({"tags": {"values": ["x"], "mode": "exact"}})) == [b]
    assert ids(q.get_jobs({"tags": {"values": []}})) == [c, b, a]  # empty tag filter: no filter
    combined = {"job_type": "email", "priority": 1, "tags": {"values": ["x"]}}
    assert ids(q.get_jobs(combined)) == [a]
    assert ids(q.get_jobs({"job_type": "email"}, limit=1)) == [b]
    assert ids(q.get_jobs({"job_type": "email"}, limit=1, offset=1)) == [a]


def test_get_jobs_cursor_pagination(q: Any) -> None:
    made = [q.add_job("t") for _ in range(5)]
    newest_first = sorted(made, reverse=True)
    first = q.get_jobs(limit=2)
    assert ids(first) == newest_first[:2]
    second = q.get_jobs(limit=2, cursor=first[-1].id)
    assert ids(second) == newest_first[2:4]
    # with a cursor, offset is ignored
    assert ids(q.get_jobs(limit=2, offset=3, cursor=first[-1].id)) == newest_first[2:4]
    assert ids(q.get_jobs(limit=10, cursor=newest_first[-1])) == []


@pytest.mark.parametrize(
    "filters",
    [
        {"jobType": "x"},
        {"status": "pending"},
        {"run_at": {"after": T0}},
        {"run_at": datetime(2030, 1, 1)},
        {"tags": {"values": ["x"], "mode": "some"}},
        {"tags": ["x"]},
        {"priority": "high"},
        "job_type=x",
    ],
)
def test_bad_filters_rejected(q: Any, filters: Any) -> None:
    with pytest.raises(InvalidFilterError):
        q.get_jobs(filters)
    with pytest.raises(InvalidFilterError):
        q.cancel_all_upcoming_jobs(filters)
    with pytest.raises(InvalidFilterError):
        q.edit_all_pending_jobs(filters, priority=1)


def test_bad_cursor_rejected(q: Any) -> None:
    with pytest.raises(InvalidFilterError):
        q.get_jobs(cursor=-3)


def test_tag_modes(q: Any) -> None:
    ab = q.add_job("t", tags=["a", "b"])
    ba = q.add_job("t", tags=["b", "a"])
    a = q.add_job("t", tags=["a"])
    c = q.add_job("t", tags=["c"])
    untagged = q.add_job("t")

    def by(tags: list[str], mode: str) -> set[int]:
        return set(ids(q.get_jobs_by_tags(tags, mode=mode)))

    assert by(["a"], "all") == {ab, ba, a}  # untagged never matches "all"
    assert by(["a", "b"], "all") == {ab, ba}
    assert by(["a", "c"], "any") == {ab, ba, a, c}
    assert by(["a"], "none") == {c, untagged}  # "none" includes untagged jobs
    assert by(["a", "b"], "exact") == {ab, ba}  # set equality: order-insensitive
    assert by(["b", "a", "a"], "exact") == {ab, ba}
    assert by(["a"], "exact") == {a}
    assert by(["zzz"], "all") == set()
    assert by(["zzz"], "none") == {ab, ba, a, c, untagged}


def test_get_jobs_by_tags_order_and_paging(q: Any) -> None:
    made = [q.add_job("t", tags=["p"]) for _ in range(4)]
    assert ids(q.get_jobs_by_tags(["p"])) == sorted(made, reverse=True)
    assert ids(q.get_jobs_by_tags(["p"], "all", 2, 2)) == sorted(made, reverse=True)[2:]


@pytest.mark.parametrize("tags,mode", [([], "all"), ("a", "all"), (["a"], "sometimes")])
def test_get_jobs_by_tags_rejects_bad_queries(q: Any, tags: Any, mode: str) -> None:
    with pytest.raises(InvalidFilterError):
        q.get_jobs_by_tags(tags, mode=mode)


def test_get_job_events_of_unknown_job_is_empty(q: Any) -> None:
    assert q.get_job_events(123456) == []


def test_completed_job_in_status_list(q: Any) -> None:
    job_id = q.add_job("t")
    complete(q, claim_job(q, job_id))
    assert ids(q.get_jobs_by_status("completed")) == [job_id]
    assert q.get_jobs_by_status("pending") == []
