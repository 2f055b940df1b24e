"""Shared setup for the benchmarks: make ``tests/`` importable so the pure-Python reference
of the Rust core (``tests/core/reference.py``) can be imported as ``core.reference``."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))
