"""Property test: any batch with placeholders is either written whole (acyclic) or rejected
whole with ``DependencyCycleError`` (cyclic), on every backend x twin."""

from __future__ import annotations

from typing import Any

from dataqueue import DependencyCycleError, batch_dep_ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _has_cycle(edges: list[list[int]]) -> bool:
    """Reference: depth-first search over "entry i depends on entry j" edges."""
    state = [0] * len(edges)  # 0 new, 1 on stack, 2 done

    def visit(i: int) -> bool:
        if state[i] == 1:
            return True
        if state[i] == 2:
            return False
        state[i] = 1
        if any(visit(j) for j in edges[i]):
            return True
        state[i] = 2
        return False

    return any(visit(i) for i in range(len(edges)))


@st.composite
def batches(draw: st.DrawFn) -> list[list[int]]:
    size = draw(st.integers(1, 6))
    return [sorted(draw(st.sets(st.integers(0, size - 1), max_size=3))) for _ in range(size)]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edges=batches())
def test_batch_is_all_or_nothing(q: Any, edges: list[list[int]]) -> None:
    before = len(q.get_all_jobs(1000))
    jobs = [
        {
            "job_type": "prop",
            "payload": {"i": i},
            "depends_on": {"job_ids": [batch_dep_ref(j) for j in deps]},
        }
        for i, deps in enumerate(edges)
    ]
    if _has_cycle(edges):
        try:
            q.add_jobs(jobs)
        except DependencyCycleError:
            pass
        else:
            raise AssertionError(f"cyclic batch {edges} was accepted")
        assert len(q.get_all_jobs(1000)) == before
        return
    ids = q.add_jobs(jobs)
    assert len(ids) == len(edges)
    for i, deps in enumerate(edges):
        record = q.get_job(ids[i])
        assert record.payload == {"i": i}
        expected = tuple(ids[j] for j in deps) or None
        assert record.depends_on_job_ids == expected
    assert len(q.get_all_jobs(1000)) == before + len(edges)
