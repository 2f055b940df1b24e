"""The three hot paths of the backends, each timed alone: ``add_jobs`` (one call of N jobs in
chains of 10 through ``batch_dep_ref``), ``claim_jobs`` (batches of 50, by type and not,
alternately) and ``complete_jobs`` (batches of 50, releasing the next job of each chain).

Prints one JSON object of jobs/s per metric, so that ``benches/compare.py`` can run the same
code against two checkouts (``PYTHONPATH=<checkout>/python``) in interleaved rounds. Each run
uses a scratch PostgreSQL database and a fresh Redis key prefix, removed afterwards.

    python benches/hot_paths.py [--jobs 10000] [--backend postgres|redis|both]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from typing import Any

import dataqueue
from _scratch import Storage

BATCH = 50
LEASE = timedelta(minutes=5)


def _jobs(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        job: dict[str, Any] = {"job_type": "bench", "payload": {"i": i}}
        if i % 10:
            job["depends_on"] = {"job_ids": [dataqueue.batch_dep_ref(i - 1)]}
        out.append(job)
    return out


def _measure(q: Any, n: int) -> dict[str, float]:
    backend = q._backend
    jobs = _jobs(n)
    t = time.perf_counter()
    q.add_jobs(jobs)
    result = {"add_jobs": n / (time.perf_counter() - t)}
    # Claims alternate between the processor's default (only the handled types) and a claim
    # of every type (claim_all_types), timed apart.
    claim = {"claim typed": 0.0, "claim any type": 0.0}
    done = {"claim typed": 0, "claim any type": 0}
    complete = 0.0
    while sum(done.values()) < n:
        kind = "claim typed" if (sum(done.values()) // BATCH) % 2 == 0 else "claim any type"
        types = ["bench"] if kind == "claim typed" else None
        t = time.perf_counter()
        claimed = backend.claim_jobs("bench", BATCH, job_types=types, lease=LEASE)
        claim[kind] += time.perf_counter() - t
        if not claimed:
            raise RuntimeError(f"nothing to claim after {sum(done.values())} of {n} jobs")
        done[kind] += len(claimed)
        t = time.perf_counter()
        backend.complete_jobs([(j.id, "bench", j.lock_version, None) for j in claimed])
        complete += time.perf_counter() - t
    for kind, seconds in claim.items():
        result[kind] = done[kind] / seconds
    result["complete"] = n / complete
    return result


def run(backend: str, n: int) -> dict[str, float]:
    storage = Storage(backend, "hot")
    try:
        q = dataqueue.init_job_queue(storage.url, **storage.options())
        try:
            q.migrate()
            return _measure(q, n)
        finally:
            q.close()
    finally:
        storage.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--backend", choices=["postgres", "redis", "both"], default="both")
    args = parser.parse_args()
    out: dict[str, float] = {}
    if args.backend in ("postgres", "both"):
        out.update({f"postgres {k}": v for k, v in run("postgres", args.jobs).items()})
    if args.backend in ("redis", "both"):
        out.update({f"redis {k}": v for k, v in run("redis", args.jobs).items()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
