"""The table of docs/reliability.md from a chaos run's ``report.jsonl``
(``python tests/chaos/report.py $DQ_CHAOS_REPORT_DIR/report.jsonl``)."""

from __future__ import annotations

import json
import sys
from typing import Any

#: Invariants summed into "other invariants" (lost, stuck and duplicates have columns).
OTHER = (
    "wrong_state", "order_violations", "attempt_violations", "stale_writes",
    "overlapping_runs", "partial_batches",
)  # fmt: skip
HEADER = (
    "| Scenario | Backend | Jobs | Faults injected | Lost | Stuck | Duplicate completions "
    "| Other invariants | Re-runs | Re-runs per 10,000 jobs | of which after a run that ended "
    "(killed before its completion was written, or fenced off) | Max recovery (s) "
    "| Drain time (s) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def row(r: dict[str, Any]) -> str:
    faults = ", ".join(f"{kind} \u00d7{n}" for kind, n in r["faults"].items())
    if r["batches"]:
        faults += f" (batches: {', '.join(str(b) for b in r['batches'])} jobs)"
    cells = [
        r["scenario"], r["backend"], f"{r['jobs']:,}", faults, r["lost"], r["stuck"],
        r["duplicate_completions"], sum(r[k] for k in OTHER), r["reruns"], r["reruns_per_10k"],
        r["reruns_after_finished_run"], r["max_recovery_s"], r["seconds"],
    ]  # fmt: skip
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main(path: str) -> None:
    with open(path) as fh:
        reports = [json.loads(line) for line in fh if line.strip()]
    print(HEADER)
    for r in reports:
        print(row(r))


if __name__ == "__main__":
    main(sys.argv[1])
