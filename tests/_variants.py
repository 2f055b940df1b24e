"""Which backend x twin combinations the suites run (a plain module, importable from any test).

``DQ_TEST_BACKENDS`` (default ``postgres,redis``) selects backends; an unknown name is an error
rather than a silent skip, and a backend that fails to import fails its tests loudly.
"""

from __future__ import annotations

import os

KNOWN_BACKENDS = ("postgres", "redis")
TWINS = ("sync", "async")


def selected_backends() -> list[str]:
    wanted = [b.strip() for b in os.environ.get("DQ_TEST_BACKENDS", "postgres,redis").split(",")]
    unknown = [b for b in wanted if b not in KNOWN_BACKENDS]
    if unknown:
        raise ValueError(f"DQ_TEST_BACKENDS names unknown backend(s): {unknown}")
    return wanted


VARIANTS = [(b, t) for b in selected_backends() for t in TWINS]
