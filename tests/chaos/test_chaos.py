"""The chaos suite (issue 10, SPEC §9): real worker processes against servers of its own, with
faults injected, checked against storage and an independent ledger the handlers write.

Bounded form (``pytest -m chaos tests/chaos``, run by ``.ci/run``): every scenario on both
backends with a small workload, a few minutes in all. Long form (``DQ_CHAOS_LONG=1``): 20,000
jobs per scenario, by hand (``DQ_CHAOS_JOBS=N`` sets another size). ``DQ_CHAOS_REPORT_DIR``
keeps the ledgers and a ``report.jsonl`` with one line per scenario (docs/reliability.md has
the table of the last long run).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from _variants import selected_backends

from ._harness import INVARIANTS, Scenario, run_scenario
from .conftest import start_server

pytestmark = pytest.mark.chaos

LONG = os.environ.get("DQ_CHAOS_LONG") == "1"


def _size(bounded: int) -> int:
    """Jobs per scenario: bounded, 20,000 in the long form, or ``DQ_CHAOS_JOBS``."""
    if os.environ.get("DQ_CHAOS_JOBS"):
        return int(os.environ["DQ_CHAOS_JOBS"])
    return 20_000 if LONG else bounded


SCENARIOS = [
    Scenario("sigkill", frozenset({"sigkill"}), _size(1200)),
    Scenario("connkill", frozenset({"connkill"}), _size(1200)),
    Scenario("restart", frozenset({"restart"}), _size(1200)),
    Scenario("sigstop", frozenset({"sigstop"}), _size(800), long_jobs=True),
    Scenario("client-kill", frozenset({"client"}), _size(600)),
    Scenario(
        "all",
        frozenset({"sigkill", "connkill", "restart", "sigstop", "client"}),
        _size(1200),
        long_jobs=True,
    ),
]


@pytest.mark.parametrize("backend", selected_backends())
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_chaos(backend: str, scenario: Scenario, servers: dict[str, Any], chaos_dir: str) -> None:
    if backend not in servers:
        servers[backend] = start_server(backend)
    report = run_scenario(
        backend, servers[backend], scenario, chaos_dir, deadline_s=900 if LONG else 150
    )
    with open(os.path.join(chaos_dir, "report.jsonl"), "a") as fh:
        fh.write(json.dumps(report) + "\n")
    print(json.dumps(report))
    assert report["drained"], report
    failures = {k: report[k] for k in INVARIANTS if report[k]}
    assert not failures, report
