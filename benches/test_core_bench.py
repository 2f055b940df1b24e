"""Rust core (``dataqueue._core``) against the pure-Python reference (``tests/core/reference.py``).

Run: ``pytest benches/test_core_bench.py --benchmark-only`` after a release build
(``maturin develop --release``); a debug build makes the Rust side several times slower.
Each case runs both implementations on the same input; compare the two rows of a group.
"""

from __future__ import annotations

import random
from functools import cache
from types import ModuleType
from typing import Any

import pytest
from core import reference
from dataqueue import _core

IMPLS: dict[str, ModuleType] = {"rust": _core, "python": reference}
TAG_VOCABULARY = [f"tag{i}" for i in range(40)]


@cache
def dag_batch(size: int) -> list[list[int]]:
    """A random acyclic batch: entries in shuffled order, so references go forward and
    backward; up to 3 placeholder prerequisites each, some existing job ids."""
    rng = random.Random(size)
    perm = list(range(size))
    rng.shuffle(perm)
    deps: list[list[int]] = [[] for _ in range(size)]
    for rank in range(1, size):
        entry = deps[perm[rank]]
        for _ in range(rng.randrange(4)):
            entry.append(-(perm[rng.randrange(rank)] + 1))
        if rng.random() < 0.1:
            entry.append(rng.randrange(1, 10_000))
    return deps


@cache
def tag_lists(size: int) -> list[list[str] | None]:
    """Job tag lists: 10% untagged, the rest 0-6 tags from a 40-tag vocabulary."""
    rng = random.Random(size)
    return [
        None if rng.random() < 0.1 else rng.sample(TAG_VOCABULARY, rng.randrange(7))
        for _ in range(size)
    ]


@cache
def attempt_counts(size: int) -> list[int]:
    rng = random.Random(size)
    return [rng.randrange(0, 20) for _ in range(size)]


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("size", [1_000, 10_000, 100_000])
def test_plan_batch(benchmark: Any, impl: str, size: int) -> None:
    """Cycle check + topological order of a random-DAG batch."""
    benchmark.group = f"plan_batch {size:>7,} jobs"
    deps = dag_batch(size)
    order = benchmark(IMPLS[impl].plan_batch, deps)
    assert len(order) == size


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("mode", ["all", "superset"])
@pytest.mark.parametrize("size", [10_000, 100_000])
def test_tags_match_many(benchmark: Any, impl: str, mode: str, size: int) -> None:
    """One 2-tag query against many jobs' tag lists."""
    benchmark.group = f"tags_match_many {mode} {size:>7,} lists"
    lists = tag_lists(size)
    result = benchmark(IMPLS[impl].tags_match_many, lists, ["tag3", "tag7"], mode)
    assert len(result) == size and any(result)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_retry_delay_seconds(benchmark: Any, impl: str) -> None:
    """Backoff of 10,000 failures one call each, as the worker computes it (retry_delay=5,
    backoff, max 3600, random jitter)."""
    benchmark.group = "retry_delay_seconds 10,000 calls"
    attempts = attempt_counts(10_000)
    delay = IMPLS[impl].retry_delay_seconds

    def run() -> list[float]:
        return [delay(a, 5, True, 3600) for a in attempts]

    delays = benchmark(run)
    assert len(delays) == len(attempts) and max(delays) <= 3600
