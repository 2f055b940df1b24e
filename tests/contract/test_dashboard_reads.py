"""Dashboard read primitives of both backends: bounded counts, recent finishes, the jobs-table
search with its cursor, dependency edges, tag-drain holders and waiters, group counts."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _worker_helpers import add_diamond, claim_job, complete, fail, fail_terminally
from dataqueue import DependsOn, InvalidJobError, JobStatus
from dataqueue.backends.types import JobSearch
from dataqueue.options import JobFilters, TagFilter
from dataqueue.records import TagQueryMode

UTC = timezone.utc


def cells(q: Any, cap: int = 100) -> dict[tuple[str, str], tuple[int, bool, int]]:
    return {
        (c.job_type, c.status.value): (c.count, c.capped, c.blocked)
        for c in q._backend.count_jobs(cap)
    }


def test_count_jobs_per_type_and_status_with_cap_and_blocked(q: Any) -> None:
    a = q.add_job("alpha")
    q.add_jobs([{"job_type": "alpha"} for _ in range(4)])
    q.add_job("beta", depends_on=DependsOn(job_ids=[a]))
    done = claim_job(q, a)
    complete(q, done)
    q.add_job("beta", depends_on=DependsOn(job_ids=[q.add_job("gamma")]))
    got = cells(q)
    assert got[("alpha", "pending")] == (4, False, 0)
    assert got[("alpha", "completed")] == (1, False, 0)
    # The first beta's prerequisite completed: claimable. The second still waits on gamma.
    assert got[("beta", "pending")] == (2, False, 1)
    assert got[("gamma", "pending")] == (1, False, 0)
    assert ("alpha", "failed") not in got
    capped = cells(q, cap=3)
    # PostgreSQL counts a cell up to the cap (a bounded index walk); Redis keeps exact counts
    # as it writes, so it has no cap to apply.
    exact = q.backend_name == "redis"
    assert capped[("alpha", "pending")] == ((4, False, 0) if exact else (3, True, 0))
    assert capped[("beta", "pending")][:2] == (2, False)
    oldest = {
        c.job_type: c.oldest_created_at
        for c in q._backend.count_jobs(100)
        if c.status is JobStatus.PENDING
    }
    assert oldest["alpha"] is not None and oldest["alpha"].tzinfo is not None


def test_count_jobs_blocked_by_tag_drain(q: Any) -> None:
    q.add_job("imp", tags=["import"])
    q.add_job("report", depends_on={"tags": ["import"]})
    got = cells(q)
    assert got[("report", "pending")] == (1, False, 1)


def test_count_jobs_names_types_with_no_pending_job(q: Any) -> None:
    """A type whose jobs all completed, or all run, keeps its rows."""
    done = claim_job(q, q.add_job("only_done"))
    complete(q, done)
    claim_job(q, q.add_job("only_running"))
    assert cells(q) == {
        ("only_done", "completed"): (1, False, 0),
        ("only_running", "processing"): (1, False, 0),
    }


def test_count_jobs_empty_queue(q: Any) -> None:
    assert q._backend.count_jobs(10) == []


def test_recent_finished_newest_first_and_since(q: Any) -> None:
    a, b, c = q.add_job("t"), q.add_job("u"), q.add_job("t")
    complete(q, claim_job(q, a))
    time.sleep(0.01)
    fail_terminally(q, b)
    time.sleep(0.01)
    q.cancel_job(c)
    got = q._backend.recent_finished(datetime.now(UTC) - timedelta(minutes=5), 10)
    assert [(f.id, f.job_type, f.status) for f in got] == [
        (c, "t", JobStatus.CANCELLED),
        (b, "u", JobStatus.FAILED),
        (a, "t", JobStatus.COMPLETED),
    ]
    assert q._backend.recent_finished(datetime.now(UTC) + timedelta(minutes=5), 10) == []
    assert len(q._backend.recent_finished(datetime.now(UTC) - timedelta(minutes=5), 1)) == 1


def _all_pages(q: Any, search: JobSearch, limit: int, scan: int) -> list[int]:
    out: list[int] = []
    cursor = None
    for _ in range(100):
        page = q._backend.search_jobs(search, limit, cursor, scan)
        assert len(page.jobs) <= limit
        assert page.scanned <= scan
        out.extend(j.id for j in page.jobs)
        cursor = page.next_cursor
        if cursor is None:
            return out
    raise AssertionError("search_jobs never ended")


@pytest.mark.parametrize("scan", [3, 1000])
def test_search_jobs_filters_and_cursor(q: Any, scan: int) -> None:
    ids = [q.add_job("mail" if i % 2 else "sms", {"i": i}, tags=[f"t{i % 3}"]) for i in range(12)]
    x = claim_job(q, ids[5])
    fail(q, x, "SMTP <b>refused</b>", retry_delay_seconds=3600)
    q.cancel_job(ids[7])
    newest_first = sorted(ids, reverse=True)
    assert _all_pages(q, JobSearch(), 5, scan) == newest_first
    mail = [i for n, i in enumerate(ids) if n % 2]
    assert _all_pages(q, JobSearch(JobFilters(job_type="mail")), 2, scan) == mail[::-1]
    pending = JobSearch(statuses=(JobStatus.PENDING,))
    still = [i for i in newest_first if q.get_job(i).status is JobStatus.PENDING]
    assert len(still) >= 8
    assert _all_pages(q, pending, 4, scan) == still
    two = JobSearch(statuses=(JobStatus.FAILED, JobStatus.CANCELLED))
    assert _all_pages(q, two, 4, scan) == [ids[7], ids[5]]
    err = JobSearch(error_contains="smtp <B>")
    assert _all_pages(q, err, 4, scan) == [ids[5]]
    tagged = JobSearch(JobFilters(tags=TagFilter(("t0",), TagQueryMode.ANY)))
    assert _all_pages(q, tagged, 10, scan) == [i for n, i in enumerate(ids) if n % 3 == 0][::-1]
    future = JobSearch(created_gte=datetime.now(UTC) + timedelta(hours=1))
    assert _all_pages(q, future, 10, scan) == []
    past = JobSearch(created_lt=datetime.now(UTC) + timedelta(hours=1))
    assert _all_pages(q, past, 100, scan) == newest_first


def test_search_jobs_rejects_a_foreign_cursor(q: Any) -> None:
    with pytest.raises(InvalidJobError, match="not-a-cursor"):
        q._backend.search_jobs(JobSearch(), 10, "not-a-cursor", 100)


def test_dependency_edges_holders_waiters_and_groups(q: Any) -> None:
    root, left, right, sink = add_diamond(q, ("root", "l", "r", "s"), tags=["etl", "daily"])
    edges = q._backend.get_dependents([root, left, right, sink], 100)
    assert edges == {root: [left, right], left: [sink], right: [sink]}
    assert sum(len(v) for v in q._backend.get_dependents([root, left], 2).values()) == 2
    other = q.add_job("x", tags=["etl", "daily", "extra"])
    q.add_job("x", tags=["etl"])  # not a superset of the drain
    report = q.add_job("report", depends_on={"tags": ["etl", "daily"]})
    q.add_job("report2", depends_on={"tags": ["nothing-holds-this"]})
    assert q._backend.get_tag_holders(["etl", "daily"], report, 10) == [root, other]
    assert q._backend.get_tag_holders(["daily", "etl"], root, 1) == [other]
    assert q._backend.get_drain_waiters(["etl", "daily"], 10) == [report]
    assert q._backend.get_drain_waiters(["etl"], 10) == []
    g = q.add_job("grp", group="tenant-1")
    assert q._backend.count_group_processing("tenant-1") == 0
    claim_job(q, g)
    assert q._backend.count_group_processing("tenant-1") == 1
    assert q._backend.count_group_processing("nobody") == 0


def test_get_jobs_by_ids_in_order_skipping_missing(q: Any) -> None:
    a, b, c = q.add_job("t"), q.add_job("u"), q.add_job("t")
    got = q._backend.get_jobs_by_ids([c, 999999, a, c])
    assert [j.id for j in got] == [c, a]
    assert got[0] == q.get_job(c)
    assert q._backend.get_jobs_by_ids([]) == []
    assert [j.job_type for j in q._backend.get_jobs_by_ids([b])] == ["u"]
