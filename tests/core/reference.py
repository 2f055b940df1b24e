"""Pure-Python reference implementation of ``dataqueue._core``.

Written for clarity, not speed: property tests check the Rust core against it and the
benchmarks in ``benches/`` measure the Rust core against it. It raises the same
``dataqueue.errors`` classes for the same bad inputs.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping, Sequence

from dataqueue.errors import (
    DependencyCycleError,
    DependencyError,
    InvalidFilterError,
    InvalidJobError,
    UnknownPrerequisiteError,
)

MAX_DELAY_SECONDS = 2**31 - 1
TAG_MODES = ("all", "any", "none", "exact", "superset")


# -- batches ---------------------------------------------------------------------------------
def batch_dep_ref(index: int) -> int:
    """``-(index + 1)``: the placeholder for batch entry ``index``."""
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise DependencyError(
            f"batch_dep_ref: expected a non-negative integer index, got {index!r}"
        )
    return -(index + 1)


def _out_of_range(placeholder: int, size: int) -> UnknownPrerequisiteError:
    return UnknownPrerequisiteError(
        f"placeholder {placeholder} refers to batch[{-placeholder - 1}] "
        f"but the batch has {size} job(s)"
    )


def resolve_batch_refs(deps: Sequence[Sequence[int]], ids: Sequence[int]) -> list[list[int]]:
    """Replace placeholders with ``ids[k]`` and drop duplicates, keeping the first."""
    resolved: list[list[int]] = []
    for entry in deps:
        out: list[int] = []
        for dep in entry:
            if dep < 0:
                k = -dep - 1
                if k >= len(ids):
                    raise _out_of_range(dep, len(ids))
                dep = ids[k]
            if dep not in out:
                out.append(dep)
        resolved.append(out)
    return resolved


def _cycle_message(labels: list[str]) -> str:
    return "dependency cycle: " + " -> ".join([*labels, labels[0]])


def _find_cycle(starts: Sequence[int], edges: Mapping[int, Sequence[int]]) -> list[int] | None:
    """One cycle reachable from ``starts`` (iterative DFS), as ``[a, b, ..., z]``."""
    state: dict[int, str] = {}
    for start in starts:
        if start in state:
            continue
        state[start] = "path"
        stack: list[tuple[int, int]] = [(start, 0)]
        while stack:
            node, i = stack[-1]
            successors = edges.get(node, ())
            if i == len(successors):
                state[node] = "done"
                stack.pop()
                continue
            stack[-1] = (node, i + 1)
            child = successors[i]
            if child not in state:
                state[child] = "path"
                stack.append((child, 0))
            elif state[child] == "path":
                path = [n for n, _ in stack]
                return path[path.index(child) :]
    return None


def plan_batch(
    deps: Sequence[Sequence[int]],
    existing_edges: Mapping[int, Sequence[int]] | None = None,
) -> list[int]:
    """Validate a batch and return a topological order (lowest ready index first)."""
    n = len(deps)
    for i, entry in enumerate(deps):
        for dep in entry:
            if dep < 0:
                k = -dep - 1
                if k >= n:
                    raise _out_of_range(dep, n)
                if k == i:
                    raise DependencyCycleError(f"job batch[{i}] cannot depend on itself")
            elif dep == 0:
                raise DependencyError(f"depends_on of batch[{i}]: 0 is not a job id")

    prereqs = [[-dep - 1 for dep in entry if dep < 0] for entry in deps]
    dependents: list[list[int]] = [[] for _ in range(n)]
    indegree = [len(p) for p in prereqs]
    for i, ks in enumerate(prereqs):
        for k in ks:
            dependents[k].append(i)
    ready = [i for i in range(n) if indegree[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for i in dependents[k]:
            indegree[i] -= 1
            if indegree[i] == 0:
                heapq.heappush(ready, i)
    if len(order) < n:
        stuck = {i: [k for k in prereqs[i] if indegree[k] > 0] for i in range(n) if indegree[i]}
        cycle = _find_cycle(sorted(stuck), stuck)
        assert cycle is not None  # every unplaced entry has an unplaced prerequisite
        raise DependencyCycleError(_cycle_message([f"batch[{i}]" for i in cycle]))

    if existing_edges:
        starts = [dep for entry in deps for dep in entry if dep > 0]
        cycle = _find_cycle(starts, existing_edges)
        if cycle is not None:
            raise DependencyCycleError(_cycle_message([f"job {i}" for i in cycle]))
    return order


# -- tags ------------------------------------------------------------------------------------
def _set_match(job: set[str], query: set[str], mode: str) -> bool:
    if mode == "all":
        return query <= job
    if mode == "any":
        return not query.isdisjoint(job)
    if mode == "none":
        return query.isdisjoint(job)
    if mode == "exact":
        return query == job
    return bool(query) and bool(job) and query <= job  # superset (tag drain)


def _check_mode(mode: str) -> None:
    if mode not in TAG_MODES:
        raise InvalidFilterError(
            f"unknown tag mode '{mode}': expected one of all, any, none, exact, superset"
        )


def tags_match(job_tags: Sequence[str] | None, query: Sequence[str], mode: str) -> bool:
    """Set-semantics tag match of one job."""
    _check_mode(mode)
    return _set_match(set(job_tags or ()), set(query), mode)


def tags_match_many(
    tag_lists: Sequence[Sequence[str] | None], query: Sequence[str], mode: str
) -> list[bool]:
    """One query against many jobs' tags; the query set is built once."""
    _check_mode(mode)
    q = set(query)
    return [_set_match(set(tags or ()), q, mode) for tags in tag_lists]


# -- backoff ---------------------------------------------------------------------------------
def _check_non_negative(name: str, value: int | None) -> None:
    if value is not None and value < 0:
        raise InvalidJobError(f"{name} must be a non-negative integer, got {value}")


def _delay(
    attempts: int,
    retry_delay: int | None,
    retry_backoff: bool | None,
    retry_delay_max: int | None,
    rand: float,
) -> float:
    if attempts < 0:
        raise InvalidJobError(f"attempts must be a non-negative integer, got {attempts}")
    # Past 2**64 every positive base is over the cap; clamping keeps huge attempts cheap.
    power = 2 ** min(attempts, 64)
    if retry_delay is None and retry_backoff is None and retry_delay_max is None:
        return float(min(power * 60, MAX_DELAY_SECONDS))
    base = retry_delay if retry_delay is not None else 60
    if retry_backoff is False:
        return float(min(base, MAX_DELAY_SECONDS))
    cap = min(retry_delay_max or MAX_DELAY_SECONDS, MAX_DELAY_SECONDS)
    return float(min(cap, base * power)) * (0.5 + 0.5 * rand)


def _check_rand(rand: float) -> float:
    if not 0.0 <= rand < 1.0:
        raise InvalidJobError(f"rand must be in [0, 1), got {rand}")
    return rand


def retry_delay_seconds(
    attempts: int,
    retry_delay: int | None,
    retry_backoff: bool | None,
    retry_delay_max: int | None,
    rand: float | None = None,
) -> float:
    """Seconds before the next attempt (SPEC §5)."""
    _check_non_negative("retry_delay", retry_delay)
    _check_non_negative("retry_delay_max", retry_delay_max)
    r = random.random() if rand is None else _check_rand(rand)
    return _delay(attempts, retry_delay, retry_backoff, retry_delay_max, r)
