"""Unit tests of the Rust core (``dataqueue._core``) and of the pure-Python reference.

Most tests run against both implementations (fixture ``impl``), so the reference used by the
property tests and benchmarks is itself pinned to the expected behaviour. Covers the original's
job-dependency unit suite (inventory §12.6) plus the Python-facing error contract.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from dataqueue import _core, errors

from . import reference

IMPLS = {"rust": _core, "reference": reference}


@pytest.fixture(params=list(IMPLS))
def impl(request: pytest.FixtureRequest) -> Any:
    """The implementation under test (typed Any: the two modules share one duck type)."""
    module: ModuleType = IMPLS[request.param]
    return module


def cycle_nodes(message: str) -> list[str]:
    """The labels of 'dependency cycle: a -> b -> a', closing label included."""
    match = re.fullmatch(r"dependency cycle: (.+)", message)
    assert match, message
    return match.group(1).split(" -> ")


# -- batch_dep_ref -----------------------------------------------------------------------------
def test_batch_dep_ref_encoding(impl: Any) -> None:
    assert [impl.batch_dep_ref(i) for i in (0, 1, 2, 99)] == [-1, -2, -3, -100]


@pytest.mark.parametrize("bad", [-1, -100, 1.5, "0", None, True])
def test_batch_dep_ref_rejects_invalid_input(impl: Any, bad: Any) -> None:
    with pytest.raises(errors.DependencyError, match="non-negative integer") as info:
        impl.batch_dep_ref(bad)
    assert repr(bad) in str(info.value)


def test_batch_dep_ref_rejects_huge_index() -> None:
    with pytest.raises(errors.DependencyError):
        _core.batch_dep_ref(2**63 - 1)
    with pytest.raises(errors.DependencyError):
        _core.batch_dep_ref(2**80)


def test_public_batch_dep_ref_uses_the_core() -> None:
    from dataqueue import batch_dep_ref

    assert batch_dep_ref(3) == -4
    with pytest.raises(errors.DependencyError):
        batch_dep_ref(-2)


# -- resolve_batch_refs ----------------------------------------------------------------------
def test_resolve_negative_placeholders(impl: Any) -> None:
    assert impl.resolve_batch_refs([[-1], [-2, -1]], [10, 11]) == [[10], [11, 10]]


def test_resolve_mixed_with_positive_ids_and_dedupes(impl: Any) -> None:
    deps = [[5, -1, 5, -2, -1], [], [10]]
    assert impl.resolve_batch_refs(deps, [10, 11, 12]) == [[5, 10, 11], [], [10]]


@pytest.mark.parametrize("placeholder", [-3, -100])
def test_resolve_out_of_range(impl: Any, placeholder: int) -> None:
    with pytest.raises(errors.UnknownPrerequisiteError, match=str(placeholder)) as info:
        impl.resolve_batch_refs([[placeholder]], [10, 11])
    assert "2 job(s)" in str(info.value)


# -- plan_batch ------------------------------------------------------------------------------
def test_plan_keeps_an_ordered_batch(impl: Any) -> None:
    assert impl.plan_batch([]) == []
    assert impl.plan_batch([[], [-1], [-1, -2, 7]]) == [0, 1, 2]


def test_plan_allows_forward_references(impl: Any) -> None:
    # batch[0] needs batch[2]; batch[1] is free and keeps its place among the ready entries.
    assert impl.plan_batch([[-3], [], []]) == [1, 2, 0]
    assert impl.plan_batch([[-2], [-3], []]) == [2, 1, 0]


def test_plan_self_reference(impl: Any) -> None:
    with pytest.raises(errors.DependencyCycleError, match="cannot depend on itself") as info:
        impl.plan_batch([[], [-2]])
    assert "batch[1]" in str(info.value)


def test_plan_names_the_cycle(impl: Any) -> None:
    with pytest.raises(errors.DependencyCycleError, match="cycle") as info:
        impl.plan_batch([[-3], [], [-1]])
    assert str(info.value) == "dependency cycle: batch[0] -> batch[2] -> batch[0]"


def test_plan_names_only_the_cycle_not_its_tail(impl: Any) -> None:
    deps = [[-2], [-3], [-4], [-2], [-1]]
    with pytest.raises(errors.DependencyCycleError) as info:
        impl.plan_batch(deps)
    assert cycle_nodes(str(info.value)) == ["batch[1]", "batch[2]", "batch[3]", "batch[1]"]


def test_plan_placeholder_out_of_range(impl: Any) -> None:
    with pytest.raises(errors.UnknownPrerequisiteError) as info:
        impl.plan_batch([[], [-3]])
    assert str(info.value) == "placeholder -3 refers to batch[2] but the batch has 2 job(s)"


def test_plan_rejects_zero(impl: Any) -> None:
    with pytest.raises(errors.DependencyError, match="0 is not a job id"):
        impl.plan_batch([[0]])


def test_plan_cycle_through_existing_jobs(impl: Any) -> None:
    edges = {10: [11], 11: [12]}
    assert impl.plan_batch([[10], [-1, 12]], edges) == [0, 1]
    edges[12] = [10]
    with pytest.raises(errors.DependencyCycleError) as info:
        impl.plan_batch([[10], [-1, 12]], edges)
    assert str(info.value) == "dependency cycle: job 10 -> job 11 -> job 12 -> job 10"
    # A cycle the batch cannot reach is not the batch's problem.
    assert impl.plan_batch([[99]], edges) == [0]


def test_plan_100k_chain_of_forward_references(impl: Any) -> None:
    n = 100_000
    deps = [[-(i + 2)] for i in range(n - 1)] + [[]]
    order = impl.plan_batch(deps)
    assert order == list(range(n - 1, -1, -1))
    deps[-1] = [-1]
    with pytest.raises(errors.DependencyCycleError) as info:
        impl.plan_batch(deps)
    assert len(cycle_nodes(str(info.value))) == n + 1


@pytest.mark.parametrize(
    "deps",
    [[[1.5]], [["x"]], "abc", [None], [[None]], 5],
)
def test_plan_malformed_input_is_a_dependency_error(deps: Any) -> None:
    with pytest.raises(errors.DependencyError):
        _core.plan_batch(deps)


def test_plan_accepts_tuples_and_rejects_bad_edges() -> None:
    assert _core.plan_batch(((), (-1,)), {1: (2,)}) == [0, 1]
    with pytest.raises(errors.DependencyError):
        _core.plan_batch([[5]], {"a": [1]})  # type: ignore[dict-item]


def test_errors_are_the_library_classes() -> None:
    cases: list[tuple[Callable[[], object], type[errors.DataQueueError]]] = [
        (lambda: _core.plan_batch([[-1]]), errors.DependencyCycleError),
        (lambda: _core.plan_batch([[-5]]), errors.UnknownPrerequisiteError),
        (lambda: _core.batch_dep_ref(-1), errors.DependencyError),
        (lambda: _core.tags_match(["a"], ["a"], "nope"), errors.InvalidFilterError),
        (lambda: _core.retry_delay_seconds(-1, None, None, None), errors.InvalidJobError),
    ]
    for call, expected in cases:
        with pytest.raises(expected) as info:
            call()
        assert type(info.value) is expected
        assert isinstance(info.value, errors.DataQueueError)


# -- tags ------------------------------------------------------------------------------------
def test_tags_are_superset_empty_required_is_false(impl: Any) -> None:
    assert impl.tags_match(["a", "b"], [], "superset") is False


def test_tags_are_superset_inclusion(impl: Any) -> None:
    assert impl.tags_match(["a", "b", "c"], ["c", "a"], "superset") is True
    assert impl.tags_match(["a", "b"], ["a", "z"], "superset") is False


def test_tags_are_superset_null_or_empty_holder(impl: Any) -> None:
    assert impl.tags_match(None, ["a"], "superset") is False
    assert impl.tags_match([], ["a"], "superset") is False


@pytest.mark.parametrize(
    ("job", "query", "mode", "expected"),
    [
        (["a", "b"], ["b", "a"], "all", True),
        (["a", "b"], ["a", "c"], "all", False),
        (None, [], "all", True),
        (None, ["a"], "all", False),
        (["a"], [], "all", True),
        (["a", "b"], ["c", "b"], "any", True),
        (["a"], ["c"], "any", False),
        (["a"], [], "any", False),
        (["a"], ["c"], "none", True),
        (["a"], ["a", "c"], "none", False),
        (None, ["a"], "none", True),
        ([], ["a"], "none", True),
        (["b", "a", "a"], ["a", "b"], "exact", True),
        (["a", "b", "c"], ["a", "b"], "exact", False),
        (["a"], ["a", "b"], "exact", False),
        (None, [], "exact", True),
        (["a"], [], "exact", False),
    ],
)
def test_tag_modes(
    impl: Any, job: list[str] | None, query: list[str], mode: str, expected: bool
) -> None:
    assert impl.tags_match(job, query, mode) is expected
    assert impl.tags_match_many([job, job], query, mode) == [expected, expected]


def test_tags_match_many_handles_mixed_lists(impl: Any) -> None:
    lists = [["x", "y"], None, [], ["y"], ("x",)]
    assert impl.tags_match_many(lists, ["x"], "all") == [True, False, False, False, True]
    assert impl.tags_match_many(lists, ["x"], "none") == [False, True, True, True, False]
    assert impl.tags_match_many([], ["x"], "any") == []


def test_tag_queries_over_64_tags() -> None:
    query = [f"t{i}" for i in range(100)]
    assert _core.tags_match(query[::-1], query, "exact") is True
    assert _core.tags_match(query[:99], query, "all") is False
    assert _core.tags_match([*query, "extra"], query, "superset") is True


@pytest.mark.parametrize("mode", ["ALL", "", "some", "superset "])
def test_unknown_tag_mode(impl: Any, mode: str) -> None:
    with pytest.raises(errors.InvalidFilterError, match="tag mode"):
        impl.tags_match(["a"], ["a"], mode)
    with pytest.raises(errors.InvalidFilterError, match="tag mode"):
        impl.tags_match_many([["a"]], ["a"], mode)


@pytest.mark.parametrize(
    ("job", "query", "mode"),
    [
        ([1], ["a"], "all"),
        ("ab", ["a"], "all"),
        (["a"], "a", "all"),
        (["a"], ["a"], 3),
        (["\ud800"], ["a"], "all"),
        (["a"], ["a"], "\ud800"),
    ],
)
def test_malformed_tags_are_filter_errors(job: Any, query: Any, mode: Any) -> None:
    with pytest.raises(errors.InvalidFilterError):
        _core.tags_match(job, query, mode)


# -- backoff ---------------------------------------------------------------------------------
def test_legacy_delay_is_two_to_the_attempts_minutes(impl: Any) -> None:
    assert impl.retry_delay_seconds(1, None, None, None) == 120.0
    assert impl.retry_delay_seconds(2, None, None, None, 0.9) == 240.0
    assert impl.retry_delay_seconds(0, None, None, None) == 60.0


def test_fixed_delay(impl: Any) -> None:
    assert impl.retry_delay_seconds(5, 10, False, None, 0.3) == 10.0
    assert impl.retry_delay_seconds(5, None, False, 3, 0.3) == 60.0


def test_backoff_with_injected_jitter(impl: Any) -> None:
    assert impl.retry_delay_seconds(1, 5, None, None, 0.0) == 5.0
    assert impl.retry_delay_seconds(1, 5, True, None, 0.5) == 7.5
    assert impl.retry_delay_seconds(4, 10, None, 100, 0.5) == 75.0  # capped at 100
    assert impl.retry_delay_seconds(3, None, True, None, 0.0) == 240.0  # default delay 60
    assert impl.retry_delay_seconds(3, 10, None, 0, 0.0) == 40.0  # max 0 = no maximum


def test_backoff_random_jitter_stays_in_window(impl: Any) -> None:
    delays = [impl.retry_delay_seconds(1, 5, None, None) for _ in range(500)]
    assert all(5.0 <= d <= 10.0 for d in delays)
    assert len(set(delays)) > 1


def test_huge_attempts_saturate(impl: Any) -> None:
    cap = float(2**31 - 1)
    assert impl.retry_delay_seconds(10**6, None, None, None) == cap
    assert impl.retry_delay_seconds(10**6, 1, None, None, 0.0) == cap / 2
    assert impl.retry_delay_seconds(2**70, 1, None, 2**70, 0.0) == cap / 2
    assert impl.retry_delay_seconds(1, 2**70, False, None) == cap


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.retry_delay_seconds(-1, None, None, None),
        lambda m: m.retry_delay_seconds(1, -1, None, None),
        lambda m: m.retry_delay_seconds(1, None, None, -5),
        lambda m: m.retry_delay_seconds(1, 5, None, None, 1.0),
        lambda m: m.retry_delay_seconds(1, 5, None, None, -0.1),
    ],
)
def test_invalid_backoff_input(impl: Any, call: Any) -> None:
    with pytest.raises(errors.InvalidJobError):
        call(impl)


@pytest.mark.parametrize(
    "args",
    [
        ("1", None, None, None),
        (1.0, None, None, None),
        (True, None, None, None),
        (1, "5", None, None),
        (1, None, 1, None),
        (1, None, None, 2.5),
        (1, 5, None, None, "0.5"),
        (1, 5, None, None, float("nan")),
    ],
)
def test_malformed_backoff_input_is_invalid_job(args: Any) -> None:
    with pytest.raises(errors.InvalidJobError):
        _core.retry_delay_seconds(*args)


# -- surface ---------------------------------------------------------------------------------
def test_extension_exports_exactly_what_the_stub_declares() -> None:
    """The PyO3 module and ``_core.pyi`` name the same functions (nothing exported unused and
    undeclared, nothing declared that the build lacks)."""
    import ast
    from pathlib import Path

    stub = Path(_core.__file__).with_name("_core.pyi")
    tree = ast.parse(stub.read_text())
    declared = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
    )
    exported = {name for name in dir(_core) if not name.startswith("_")}
    assert exported == set(declared)
