"""Property tests: the Rust core agrees with the pure-Python reference on random inputs."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from dataqueue import _core, errors
from hypothesis import given, settings
from hypothesis import strategies as st

from . import reference

T = TypeVar("T")
SETTINGS = settings(max_examples=200, deadline=None)


def outcome(call: Callable[[], T]) -> tuple[str, T | str]:
    """('ok', value) or ('error', exception class name): comparable across implementations."""
    try:
        return "ok", call()
    except errors.DataQueueError as exc:
        return "error", type(exc).__name__


def assert_topological(deps: list[list[int]], order: list[int]) -> None:
    assert sorted(order) == list(range(len(deps)))
    position = {index: p for p, index in enumerate(order)}
    for i, entry in enumerate(deps):
        for dep in entry:
            if dep < 0:
                assert position[-dep - 1] < position[i]


def assert_names_a_batch_cycle(deps: list[list[int]], message: str) -> None:
    """'dependency cycle: batch[a] -> batch[b] -> ... -> batch[a]' with real edges only."""
    nodes = [int(x) for x in re.findall(r"batch\[(\d+)\]", message)]
    assert message.startswith("dependency cycle: ")
    assert len(nodes) >= 3 and nodes[0] == nodes[-1]
    assert len(set(nodes[:-1])) == len(nodes) - 1  # a simple cycle
    for a, b in itertools.pairwise(nodes):
        assert -(b + 1) in deps[a]


# -- strategies --------------------------------------------------------------------------------
@st.composite
def any_batch(draw: st.DrawFn) -> list[list[int]]:
    """Arbitrary batches: placeholders (some out of range, some self), existing ids, cycles."""
    n = draw(st.integers(0, 25))
    dep = st.one_of(st.integers(-(n + 2), -1), st.integers(1, 8))
    return draw(st.lists(st.lists(dep, max_size=4), min_size=n, max_size=n))


@st.composite
def acyclic_batch(draw: st.DrawFn) -> list[list[int]]:
    """Batches that are DAGs over a random permutation (so references go both ways)."""
    n = draw(st.integers(1, 40))
    perm = draw(st.permutations(list(range(n))))
    deps: list[list[int]] = [[] for _ in range(n)]
    for rank in range(1, n):
        earlier = draw(st.lists(st.integers(0, rank - 1), max_size=3))
        deps[perm[rank]] = [-(perm[e] + 1) for e in earlier]
        deps[perm[rank]] += draw(st.lists(st.integers(1, 50), max_size=1))
    return deps


@st.composite
def cyclic_batch(draw: st.DrawFn) -> list[list[int]]:
    """A DAG plus one back edge along a chain, so it certainly contains a cycle."""
    deps = draw(acyclic_batch().filter(lambda d: len(d) >= 2))
    n = len(deps)
    ring = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=min(n, 6), unique=True))
    for a, b in zip(ring, ring[1:] + ring[:1], strict=True):
        deps[a].append(-(b + 1))
    return deps


edge_maps = st.dictionaries(st.integers(1, 8), st.lists(st.integers(1, 8), max_size=3), max_size=8)
tag = st.sampled_from(["a", "b", "c", "d", "é", ""])
tag_list = st.one_of(st.none(), st.lists(tag, max_size=6))
modes = st.sampled_from(reference.TAG_MODES)
delays = st.one_of(st.none(), st.integers(0, 10**6), st.integers(0, 2**70))
rands = st.floats(0.0, 1.0, exclude_max=True)


# -- batches -----------------------------------------------------------------------------------
@SETTINGS
@given(any_batch(), st.one_of(st.none(), edge_maps))
def test_plan_batch_agrees_with_reference(deps: list[list[int]], edges: Any) -> None:
    rust = outcome(lambda: _core.plan_batch(deps, edges))
    ref = outcome(lambda: reference.plan_batch(deps, edges))
    assert rust == ref
    if rust[0] == "ok":
        assert isinstance(rust[1], list)
        assert_topological(deps, rust[1])


@SETTINGS
@given(acyclic_batch())
def test_dags_are_accepted_in_a_valid_stable_order(deps: list[list[int]]) -> None:
    order = _core.plan_batch(deps)
    assert_topological(deps, order)
    assert order == reference.plan_batch(deps)


@SETTINGS
@given(cyclic_batch())
def test_cycles_are_rejected_and_named(deps: list[list[int]]) -> None:
    try:
        _core.plan_batch(deps)
    except errors.DependencyCycleError as exc:
        message = str(exc)
    else:
        raise AssertionError("a cyclic batch was accepted")
    if "cannot depend on itself" not in message:
        assert_names_a_batch_cycle(deps, message)


@SETTINGS
@given(any_batch(), st.lists(st.integers(1, 10**9), max_size=30))
def test_resolve_batch_refs_agrees_with_reference(deps: list[list[int]], ids: list[int]) -> None:
    rust = outcome(lambda: _core.resolve_batch_refs(deps, ids))
    assert rust == outcome(lambda: reference.resolve_batch_refs(deps, ids))


# -- tags ------------------------------------------------------------------------------------
@SETTINGS
@given(st.lists(tag_list, max_size=20), st.lists(tag, max_size=5), modes)
def test_tag_matching_agrees_with_reference(
    tag_lists: list[list[str] | None], query: list[str], mode: str
) -> None:
    expected = reference.tags_match_many(tag_lists, query, mode)
    assert _core.tags_match_many(tag_lists, query, mode) == expected
    assert [_core.tags_match(tags, query, mode) for tags in tag_lists] == expected


@SETTINGS
@given(tag_list, st.lists(st.text(max_size=3), max_size=70), modes)
def test_tag_matching_with_arbitrary_text(
    job: list[str] | None, query: list[str], mode: str
) -> None:
    # Arbitrary (possibly non-ASCII) text and queries past the 64-tag bitmask.
    tags = None if job is None else job + query[: len(query) // 2]
    assert _core.tags_match(tags, query, mode) == reference.tags_match(tags, query, mode)


# -- backoff ---------------------------------------------------------------------------------
@SETTINGS
@given(
    st.one_of(st.integers(0, 80), st.integers(0, 2**70)),
    delays,
    st.one_of(st.none(), st.booleans()),
    delays,
    rands,
)
def test_retry_delay_agrees_with_reference(
    attempts: int, delay: int | None, backoff: bool | None, maximum: int | None, rand: float
) -> None:
    rust = _core.retry_delay_seconds(attempts, delay, backoff, maximum, rand)
    ref = reference.retry_delay_seconds(attempts, delay, backoff, maximum, rand)
    assert math.isclose(rust, ref, rel_tol=1e-9, abs_tol=1e-9)
    assert 0.0 <= rust <= reference.MAX_DELAY_SECONDS


@SETTINGS
@given(
    st.integers(-2, 70),
    st.one_of(st.none(), st.integers(-3, 500)),
    st.one_of(st.none(), st.booleans()),
    st.one_of(st.none(), st.integers(-3, 5000)),
    rands,
)
def test_retry_delay_errors_agree_with_reference(
    attempts: int, delay: int | None, backoff: bool | None, maximum: int | None, rand: float
) -> None:
    rust = outcome(lambda: _core.retry_delay_seconds(attempts, delay, backoff, maximum, rand))
    ref = outcome(lambda: reference.retry_delay_seconds(attempts, delay, backoff, maximum, rand))
    assert rust[0] == ref[0]
    if rust[0] == "error":
        assert rust == ref == ("error", "InvalidJobError")
    else:
        assert math.isclose(rust[1], ref[1], rel_tol=1e-9, abs_tol=1e-9)
