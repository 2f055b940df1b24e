"""Claim cost against queue depth: the scale curves of issue 15 (both backends).

    python benches/bench_scale.py [--backend postgres|redis|both]
        [--sizes 10000,100000,1000000] [--shapes one_type,other_types,blocked,scheduled,groups]
        [--drain 5000] [--plot docs/images/scale_curves.png] [--json ROWS.json] [--dag] [--dag-only]
    python benches/bench_scale.py --from-json benches/results/scale.json --plot OUT.png

For each backend, shape and number of pending jobs N, a fresh queue is loaded with N pending
jobs, then measured with a worker that handles one type, ``work``:

- ``one_type``: N claimable ``work`` jobs.
- ``other_types``: N/2 claimable jobs of 20 other types (priorities 0-9, above ``work``'s 0),
  then N/2 ``work`` jobs.
- ``blocked``: N/2 ``work`` jobs (priority 9) blocked on a prerequisite that never runs, then
  N/2 claimable ones.
- ``scheduled``: N/2 ``work`` jobs (priority 9) scheduled a day ahead, then N/2 due ones.
- ``groups``: N/2 ``work`` jobs (priority 9) in 20 groups, each group at its cap (one job of
  it held processing, the worker runs with ``group_concurrency=1``), then N/2 ungrouped ones.

The jobs in the way are written first (and rank first), so a claim that had to step over
them would show it. Measured: ``claim ms`` (median of 20 claims of 10 jobs through the
backend, each batch completed before the next: the pickup cost a worker pays per claim),
``pickup ms`` (p50 of a new job's enqueue-to-start with an idle worker at 100 jobs/s, in the
shapes where the jobs in the way leave the worker idle), ``drain/s`` (one in-process
processor, concurrency 10, batch 10, draining ``--drain`` jobs of ``work``) and, on
PostgreSQL, the shared buffers one claim touches (``EXPLAIN (ANALYZE, BUFFERS)``). The sizes
of a shape are loaded side by side and measured in ``--rounds`` interleaved rounds (medians),
so that the drift of a shared machine hits every size alike.

Loading uses the fast paths: one INSERT ... SELECT per shape on PostgreSQL (no events, as a
COPY would write), ``add_jobs`` in batches of 5,000 (one script each) on Redis.

``--dag``: a 10,000-job random DAG (each job depends on 0-3 random earlier jobs) drains
against the same jobs without edges, 3 interleaved rounds, median ratio.

Servers: ``DATAQUEUE_TEST_PG_URL`` / ``DATAQUEUE_TEST_REDIS_URL`` (defaults: local). Point the
Redis URL at a server of its own (``redis-server --port 6391 --save ''``): a million jobs are
millions of keys, and every ``SCAN`` of other users of a shared server walks them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from _scratch import DrainClock, Storage, print_header

SHAPES = ("one_type", "other_types", "blocked", "scheduled", "groups")
GROUPS = 20
LEASE = timedelta(minutes=10)
CLAIMS = 20


# -- loading ----------------------------------------------------------------------------------
def _pg_load(url: str, shape: str, n: int, part: str) -> None:
    """``part`` "way": the jobs in the way; "work": the claimable ``work`` jobs."""
    import psycopg

    half = n // 2
    work = n if shape == "one_type" else n - half
    with psycopg.connect(url, autocommit=True) as conn:
        if part == "work":
            conn.execute(
                "INSERT INTO job_queue (job_type, payload, ready_at)"
                f" SELECT 'work', '{{}}', now() FROM generate_series(1, {work}) g"
            )
        elif shape == "other_types":
            conn.execute(
                "INSERT INTO job_queue (job_type, payload, priority, ready_at)"
                f" SELECT 'other_' || (g % 20), '{{}}', g % 10, now()"
                f" FROM generate_series(1, {half}) g"
            )
        elif shape == "blocked":
            row = conn.execute(
                "INSERT INTO job_queue (job_type, payload, ready_at) VALUES ('gate', '{}', NULL)"
                " RETURNING id"
            ).fetchone()
            assert row is not None
            gate = int(row[0])
            conn.execute(
                "INSERT INTO job_queue (job_type, payload, priority, ready_at,"
                " depends_on_job_ids, unmet_dependencies)"
                f" SELECT 'work', '{{}}', 9, NULL, ARRAY[{gate}::bigint], 1"
                f" FROM generate_series(1, {half}) g"
            )
            conn.execute(
                "INSERT INTO job_dependencies (prerequisite_id, job_id)"
                f" SELECT {gate}, id FROM job_queue WHERE id > {gate}"
            )
        elif shape == "scheduled":
            conn.execute(
                "INSERT INTO job_queue (job_type, payload, priority, run_at, ready_at)"
                " SELECT 'work', '{}', 9, now() + interval '1 day', now() + interval '1 day'"
                f" FROM generate_series(1, {half}) g"
            )
        elif shape == "groups":
            conn.execute(
                "INSERT INTO job_queue (job_type, payload, priority, group_id, ready_at)"
                f" SELECT 'work', '{{}}', 9, 'g' || (g % {GROUPS}), now()"
                f" FROM generate_series(1, {half}) g"
            )
        conn.execute("VACUUM (ANALYZE) job_queue")
        conn.execute("VACUUM (ANALYZE) job_dependencies")


def _redis_load(q: Any, shape: str, n: int, part: str) -> None:
    half = n // 2
    work = n if shape == "one_type" else n - half
    chunk = 5_000
    later = datetime.now(timezone.utc) + timedelta(days=1)
    blocked = shape == "blocked" and part == "way"
    gate = q.add_job("gate", {}, run_at=later + timedelta(days=365)) if blocked else 0

    def job(i: int) -> dict[str, Any]:
        if shape == "other_types":
            return {"job_type": f"other_{i % 20}", "payload": {}, "priority": i % 10}
        if shape == "blocked":
            return {"job_type": "work", "payload": {}, "priority": 9,
                    "depends_on": {"job_ids": [gate]}}  # fmt: skip
        if shape == "scheduled":
            return {"job_type": "work", "payload": {}, "priority": 9, "run_at": later}
        return {"job_type": "work", "payload": {}, "priority": 9, "group": f"g{i % GROUPS}"}

    if part == "way":
        for lo in range(0, half if shape != "one_type" else 0, chunk):
            q.add_jobs([job(i) for i in range(lo, min(half, lo + chunk))])
        return
    for lo in range(0, work, chunk):
        q.add_jobs([{"job_type": "work", "payload": {}} for _ in range(min(chunk, work - lo))])


def _hold_groups(q: Any) -> None:
    """Put every group at its cap (1): one job of each held processing by another worker."""
    held = q._backend.claim_jobs("holder", GROUPS, job_types=["work"], group_concurrency=1,
                                 lease=LEASE)  # fmt: skip
    assert len(held) == GROUPS and all(j.group_id for j in held), held


# -- measuring --------------------------------------------------------------------------------
def _claim_ms(q: Any, cap: int | None) -> float:
    backend = q._backend
    times: list[float] = []
    for _ in range(CLAIMS):
        t = time.perf_counter()
        jobs = backend.claim_jobs("probe", 10, job_types=["work"], group_concurrency=cap,
                                  lease=LEASE)  # fmt: skip
        times.append(time.perf_counter() - t)
        assert jobs and all(j.group_id is None for j in jobs), jobs
        backend.complete_jobs([(j.id, "probe", j.lock_version, None) for j in jobs])
    return statistics.median(times) * 1000.0


def _pg_buffers(q: Any, url: str, cap: int | None) -> int:
    import psycopg
    from dataqueue.backends.postgres.sql import CLAIM_PLANNER_SETTINGS

    backend = q._backend
    params: dict[str, Any] = {"worker": "x", "lease": LEASE, "limit": 10, "types": ["work"],
                              "channel": backend.channel}  # fmt: skip
    query = backend._q_claim[True] if cap is None else backend._q_candidates[True]
    if cap is not None:
        params.update({"cap": cap, "full": [], "seen": []})
    with psycopg.connect(url) as conn, conn.transaction(force_rollback=True):
        conn.execute(CLAIM_PLANNER_SETTINGS)
        row = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query, params).fetchone()
    assert row is not None
    plan = row[0][0]["Plan"]
    return int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))


async def _drain(url: str, opts: dict[str, Any], n: int, cap: int | None) -> float:
    from dataqueue import init_async_job_queue

    queue = init_async_job_queue(url, **opts)
    clock = DrainClock(n)

    async def noop(payload: Any, ctx: Any) -> None:
        clock.started()

    queue.on("job:completed", clock.completed)
    proc = queue.create_processor(
        {"work": noop}, concurrency=10, batch_size=10, group_concurrency=cap, poll_interval=5.0
    )
    proc.start_in_background()
    try:
        await asyncio.wait_for(clock.done.wait(), 600)
    finally:
        await proc.stop_and_drain(5)
        await queue.close()
    return clock.count / clock.elapsed


async def _pickup(url: str, opts: dict[str, Any], cap: int | None, samples: int = 100) -> float:
    """p50 enqueue-to-start (ms) of new ``work`` jobs added one by one at 100/s."""
    from dataqueue import init_async_job_queue

    queue = init_async_job_queue(url, **opts)
    starts: dict[int, float] = {}

    async def noop(payload: Any, ctx: Any) -> None:
        starts[ctx.job_id] = time.perf_counter()

    proc = queue.create_processor(
        {"work": noop}, concurrency=10, batch_size=10, group_concurrency=cap, poll_interval=5.0
    )
    proc.start_in_background()
    try:
        await asyncio.sleep(0.5)
        sent: dict[int, float] = {}
        for _ in range(samples):
            job_id = await queue.add_job("work", {})
            sent[job_id] = time.perf_counter()
            await asyncio.sleep(0.01)
        deadline = time.perf_counter() + 10
        while len([i for i in sent if i in starts]) < samples and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
    finally:
        await proc.stop_and_drain(5)
        await queue.close()
    lat = [(starts[i] - t) * 1000.0 for i, t in sent.items() if i in starts]
    if len(lat) < samples:
        raise RuntimeError(f"only {len(lat)} of {samples} new jobs started")
    return statistics.median(lat)


def measure_shape(
    backend: str, shape: str, sizes: list[int], drain: int, rounds: int
) -> list[dict[str, Any]]:
    """All sizes of one shape loaded side by side, then measured in interleaved rounds (the
    order of the sizes rotates), so that drift of a shared machine hits every size alike;
    medians over the rounds."""
    from dataqueue import init_job_queue

    cap = 1 if shape == "groups" else None
    stores = {n: Storage(backend, "scale") for n in sizes}
    queues: dict[int, Any] = {}
    rows = {n: {"backend": backend, "shape": shape, "pending": n, "load_s": 0.0} for n in sizes}
    samples: dict[int, dict[str, list[float]]] = {
        n: {"claim_ms": [], "drain": [], "pickup_ms": []} for n in sizes
    }
    try:
        for n in sizes:
            queues[n] = init_job_queue(stores[n].url, **stores[n].options())
            queues[n].migrate()
        for part in ("way", "work"):
            for n in sizes:
                t = time.perf_counter()
                if backend == "postgres":
                    _pg_load(stores[n].url, shape, n, part)
                else:
                    _redis_load(queues[n], shape, n, part)
                rows[n]["load_s"] += time.perf_counter() - t
                if part == "way" and shape == "groups":
                    _hold_groups(queues[n])
            # An idle worker in front of the jobs in the way (one_type: never idle).
            if part == "way" and shape != "one_type":
                for r in range(rounds):
                    for n in sizes[r % len(sizes) :] + sizes[: r % len(sizes)]:
                        st = stores[n]
                        samples[n]["pickup_ms"].append(
                            asyncio.run(_pickup(st.url, st.options(), cap))
                        )
        for n in sizes:
            if backend == "postgres":
                rows[n]["buffers"] = _pg_buffers(queues[n], stores[n].url, cap)
        for r in range(rounds):
            for n in sizes[r % len(sizes) :] + sizes[: r % len(sizes)]:
                st = stores[n]
                samples[n]["claim_ms"].append(_claim_ms(queues[n], cap))
                samples[n]["drain"].append(asyncio.run(_drain(st.url, st.options(), drain, cap)))
        for n in sizes:
            for key, values in samples[n].items():
                rows[n][key] = statistics.median(values) if values else None
        return [rows[n] for n in sizes]
    finally:
        for q in queues.values():
            q.close()
        for st in stores.values():
            st.drop()


# -- DAG --------------------------------------------------------------------------------------
def _dag_jobs(n: int, edges: bool, seed: int = 1) -> list[dict[str, Any]]:
    from dataqueue import batch_dep_ref

    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        job: dict[str, Any] = {"job_type": "work", "payload": {"i": i}}
        k = rng.randint(0, 3) if i else 0
        if edges and k:
            prereqs = sorted({rng.randrange(i) for _ in range(k)})
            job["depends_on"] = {"job_ids": [batch_dep_ref(p) for p in prereqs]}
        out.append(job)
    return out


def dag(backend: str, n: int = 10_000, rounds: int = 3) -> dict[str, Any]:
    from dataqueue import init_job_queue

    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for edges in (False, True):
            storage = Storage(backend, "scale")
            try:
                q = init_job_queue(storage.url, **storage.options())
                try:
                    q.migrate()
                    q.add_jobs(_dag_jobs(n, edges))
                finally:
                    q.close()
                rates[edges].append(asyncio.run(_drain(storage.url, storage.options(), n, None)))
            finally:
                storage.drop()
    ratios = [e / p for e, p in zip(rates[True], rates[False], strict=True)]
    return {
        "backend": backend,
        "plain": statistics.median(rates[False]),
        "dag": statistics.median(rates[True]),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
    }


# -- output -----------------------------------------------------------------------------------
def print_table(rows: list[dict[str, Any]]) -> None:
    print_header(
        ("backend", "<9"), ("shape", "<12"), ("pending", ">9"), ("load s", ">7"),
        ("buffers", ">8"), ("claim ms", ">9"), ("pickup ms", ">10"), ("drain/s", ">8"),
    )  # fmt: skip
    for r in rows:
        buffers = f"{r['buffers']:>8}" if r.get("buffers") is not None else f"{'-':>8}"
        pickup = f"{r['pickup_ms']:>10.2f}" if r.get("pickup_ms") is not None else f"{'-':>10}"
        load = f"{r['load_s']:>7.1f}" if r.get("load_s") is not None else f"{'-':>7}"
        print(
            f"{r['backend']:<9} {r['shape']:<12} {r['pending']:>9,} {load} "
            f"{buffers} {r['claim_ms']:>9.2f} {pickup} {r['drain']:>8.0f}"
        )
    # flatness: the largest size against the smallest, per backend and shape
    print()
    print("ratio largest/smallest pending (claim ms, pickup ms, drain rate smallest/largest):")
    keys = sorted({(r["backend"], r["shape"]) for r in rows})
    for backend, shape in keys:
        cells = sorted((r for r in rows if (r["backend"], r["shape"]) == (backend, shape)),
                       key=lambda r: r["pending"])  # fmt: skip
        if len(cells) < 2:
            continue
        lo, hi = cells[0], cells[-1]
        pickup = (
            f"{hi['pickup_ms'] / lo['pickup_ms']:.2f}x"
            if lo.get("pickup_ms") and hi.get("pickup_ms")
            else "-"
        )
        print(
            f"  {backend:<9} {shape:<12} claim {hi['claim_ms'] / lo['claim_ms']:.2f}x"
            f"  pickup {pickup}  drain {lo['drain'] / hi['drain']:.2f}x"
        )


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = sorted({r["backend"] for r in rows})
    fig, axes = plt.subplots(2, len(backends), figsize=(6 * len(backends), 8), squeeze=False)
    for col, backend in enumerate(backends):
        for shape in SHAPES:
            cells = sorted(
                (r for r in rows if r["backend"] == backend and r["shape"] == shape),
                key=lambda r: r["pending"],
            )
            if not cells:
                continue
            xs = [r["pending"] for r in cells]
            axes[0][col].plot(xs, [r["claim_ms"] for r in cells], marker="o", label=shape)
            axes[1][col].plot(xs, [r["drain"] for r in cells], marker="o", label=shape)
        axes[0][col].set_title(f"{backend}: claim of 10 jobs (ms)")
        axes[1][col].set_title(f"{backend}: drain (jobs/s)")
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xscale("log")
            ax.set_xlabel("pending jobs")
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgres", "redis", "both"], default="both")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--drain", type=int, default=2000, help="jobs drained per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="measure nothing: print the table (and --plot) of rows saved with --json",
    )
    parser.add_argument("--dag", action="store_true", help="also run the DAG comparison")
    parser.add_argument("--dag-only", action="store_true")
    args = parser.parse_args()
    if args.from_json:
        saved: list[dict[str, Any]] = json.loads(args.from_json.read_text())
        print_table(saved)
        if args.plot:
            plot(saved, args.plot)
        return
    backends = ["postgres", "redis"] if args.backend == "both" else [args.backend]
    rows: list[dict[str, Any]] = []
    if not args.dag_only:
        sizes = [int(s) for s in args.sizes.split(",")]
        shapes = [s for s in args.shapes.split(",") if s]
        for backend in backends:
            for shape in shapes:
                # each round drains and claims jobs of the smallest size's claimable half
                per_round = min(sizes) // 2 // args.rounds - CLAIMS * 10 - 100
                drain = min(args.drain, per_round)
                for row in measure_shape(backend, shape, sizes, drain, args.rounds):
                    print(json.dumps(row), flush=True)
                    rows.append(row)
        print()
        print_table(rows)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        if args.plot:
            plot(rows, args.plot)
    if args.dag or args.dag_only:
        print()
        print("10,000-job random DAG (0-3 prerequisites each) vs the same jobs without edges:")
        for backend in backends:
            r = dag(backend)
            print(
                f"  {backend:<9} plain {r['plain']:>6.0f}/s  dag {r['dag']:>6.0f}/s"
                f"  ratio {r['ratio']:.2f} (rounds {', '.join(f'{x:.2f}' for x in r['ratios'])})"
            )


if __name__ == "__main__":
    main()
