"""Fixtures for the worker tests: processors with short timings, stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _worker_helpers import FAST, stop_processor


@pytest.fixture
def make_processor(q: Any) -> Iterator[Callable[..., Any]]:
    """``make_processor(handlers, **options)`` on the test's queue (fast timings by default);
    every processor is stopped and drained at teardown."""
    made: list[Any] = []

    def make(handlers: dict[str, Any], queue: Any = None, **options: Any) -> Any:
        opts = {**FAST, **options}
        proc = (queue or q).create_processor(handlers, **opts)
        made.append(proc)
        return proc

    yield make
    for proc in reversed(made):
        stop_processor(proc)
