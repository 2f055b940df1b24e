"""A job's downstream edges outlive its completion or failure (the graph view needs them) until
cleanup deletes it, on both backends."""

from __future__ import annotations

from typing import Any

from _worker_helpers import claim_job, complete, fail_terminally
from dataqueue.records import JobStatus


def _down(api: Any, job_id: int) -> list[int]:
    detail = api.get(f"/api/jobs/{job_id}").json()
    return list(detail["dependencies"]["downstream_job_ids"])


def _graph_edges(api: Any, job_id: int) -> set[tuple[str, str]]:
    g = api.get(f"/api/jobs/{job_id}/graph").json()
    return {(e["from"], e["to"]) for e in g["edges"]}


def test_edges_survive_completion_failure_and_cascade(dash: Any, api: Any) -> None:
    q = dash.sq
    root = q.add_job("root", {})
    a = q.add_job("a", {}, depends_on={"job_ids": [root]})
    b = q.add_job("b", {}, depends_on={"job_ids": [root]})
    complete(q, claim_job(q, root))
    late = q.add_job("late", {}, depends_on={"job_ids": [root]})  # added after it completed
    assert q.get_job(late).status is JobStatus.PENDING
    assert q._backend.get_dependents([root], 100) == {root: [a, b, late]}
    assert _down(api, root) == [a, b, late]
    assert {(f"j{root}", f"j{x}") for x in (a, b, late)} <= _graph_edges(api, root)

    doomed = q.add_job("doomed", {}, max_attempts=1)
    child = q.add_job("child", {}, depends_on={"job_ids": [doomed]})
    grandchild = q.add_job("grandchild", {}, depends_on={"job_ids": [child]})
    fail_terminally(q, doomed)
    assert q.get_job(grandchild).status is JobStatus.CANCELLED
    assert q._backend.get_dependents([doomed, child], 100) == {
        doomed: [child],
        child: [grandchild],
    }
    g = api.get(f"/api/jobs/{doomed}/graph").json()
    nodes = {n["key"]: n for n in g["nodes"]}
    assert nodes[f"j{grandchild}"]["cascade_root_job_id"] == doomed
    assert {(f"j{doomed}", f"j{child}"), (f"j{child}", f"j{grandchild}")} <= {
        (e["from"], e["to"]) for e in g["edges"]
    }


def test_cleanup_deletes_the_edges_of_deleted_jobs(dash: Any) -> None:
    q = dash.sq
    root = q.add_job("root", {})
    dep = q.add_job("dep", {}, depends_on={"job_ids": [root]})
    complete(q, claim_job(q, root))
    complete(q, claim_job(q, dep))
    other = q.add_job("other", {}, depends_on={"job_ids": [root]})
    assert q.cleanup_old_jobs(0) == 2  # root and dep (completed); other is pending
    assert q._backend.get_dependents([root, dep], 100) == {}
    assert q.get_job(other).status is JobStatus.PENDING
