"""Processing throughput and pickup latency of one worker process.

    python benches/throughput.py [--backend postgres|redis|both] [--jobs 10000] [--rate 200]

1. Throughput: enqueue ``--jobs`` no-op jobs, then drain them with ONE worker process
   (``AsyncProcessor``, concurrency 10, batch size 10); jobs/s = jobs / drain time (the clock runs
   in the worker from its first claim to its last recorded completion).
2. Latency: with the worker idle and waiting, enqueue jobs one by one at ``--rate`` jobs/s;
   enqueue→start = handler start - time just before ``add_job`` (p50/p99); pickup = handler
   start - time ``add_job`` returned (the job committed).

Servers: ``DATAQUEUE_TEST_PG_URL`` / ``DATAQUEUE_TEST_REDIS_URL`` (defaults: local). Each run
uses a throwaway database (Postgres) or key prefix (Redis), removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from _scratch import DrainClock, Storage, add_worker_options, print_header

TARGETS = {
    "postgres": {"throughput": 3500, "p50": 3.0, "p99": 10.0},
    "redis": {"throughput": 5000, "p50": 2.0, "p99": 8.0},
}


# -- the worker process -----------------------------------------------------------------------
async def worker_main(args: argparse.Namespace) -> None:
    from dataqueue import init_async_job_queue

    opts: dict[str, Any] = {"key_prefix": args.key_prefix} if args.key_prefix else {}
    queue = init_async_job_queue(args.url, **opts)
    starts: dict[int, float] = {}
    clock = DrainClock(args.n)

    async def noop(payload: Any, ctx: Any) -> None:
        clock.started()
        if "t" in payload:
            starts[ctx.job_id] = time.time()

    queue.on("job:completed", clock.completed)
    proc = queue.create_processor({"noop": noop}, concurrency=10, batch_size=10, poll_interval=5.0)
    proc.start_in_background()
    print(json.dumps({"ready": True}), flush=True)
    await asyncio.wait_for(clock.done.wait(), 600)
    await proc.stop_and_drain(5)
    await queue.close()
    print(json.dumps({"n": clock.count, "elapsed": clock.elapsed, "starts": starts}), flush=True)


def start_worker(storage: Storage, n: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "--role", "worker", "--n", str(n), *storage.args()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line or not json.loads(line).get("ready"):
        raise RuntimeError("the worker did not start")
    return proc


def finish_worker(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=600)
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- the two measurements ---------------------------------------------------------------------
def bench_backend(backend: str, jobs: int, rate: float, samples: int) -> dict[str, Any]:
    from dataqueue import init_job_queue

    storage = Storage(backend)
    try:
        queue = init_job_queue(storage.url, **storage.options())
        queue.migrate()
        started = time.perf_counter()
        for i in range(0, jobs, 1000):
            queue.add_jobs(
                [{"job_type": "noop", "payload": {}} for _ in range(min(1000, jobs - i))]
            )
        enqueue_rate = jobs / (time.perf_counter() - started)
        drained = finish_worker(start_worker(storage, jobs))
        throughput = drained["n"] / drained["elapsed"]

        worker = start_worker(storage, samples)
        time.sleep(1.0)  # let it settle into its idle wait
        interval = 1.0 / rate
        next_at = time.perf_counter()
        sent: dict[int, tuple[float, float]] = {}
        for _ in range(samples):
            next_at += interval
            before = time.time()
            job_id = queue.add_job("noop", {"t": before})
            sent[job_id] = (before, time.time())
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        starts = {int(k): v for k, v in finish_worker(worker)["starts"].items()}
        lat = sorted((starts[i] - t0) * 1000.0 for i, (t0, _) in sent.items())
        pickup = sorted((starts[i] - t1) * 1000.0 for i, (_, t1) in sent.items())
        queue.close()
        return {
            "backend": backend,
            "enqueue": enqueue_rate,
            "throughput": throughput,
            "p50": statistics.median(lat),
            "p99": _p99(lat),
            "pickup_p50": statistics.median(pickup),
            "pickup_p99": _p99(pickup),
        }
    finally:
        storage.drop()


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgres", "redis", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--samples", type=int, default=1000)
    add_worker_options(parser)
    args = parser.parse_args()
    if args.role == "worker":
        asyncio.run(worker_main(args))
        return
    backends = ["postgres", "redis"] if args.backend == "both" else [args.backend]
    rows = [bench_backend(b, args.jobs, args.rate, args.samples) for b in backends]
    print()
    print(
        f"{args.jobs} no-op jobs, one worker process (concurrency 10); "
        f"latency at {args.rate:.0f} jobs/s, {args.samples} samples"
    )
    print_header(
        ("backend", "<10"), ("enqueue/s", ">10"), ("drain jobs/s", ">13"), ("target", ">7"),
        ("p50 ms", ">7"), ("p99 ms", ">7"), ("targets", ">10"), ("pickup p50/p99 ms", ">19"),
    )  # fmt: skip
    for r in rows:
        t = TARGETS[r["backend"]]
        print(
            f"{r['backend']:<10} {r['enqueue']:>10.0f} {r['throughput']:>13.0f} "
            f"{t['throughput']:>7} {r['p50']:>7.2f} {r['p99']:>7.2f} "
            f"{t['p50']:>4} / {t['p99']:<4}   {r['pickup_p50']:>7.2f} / {r['pickup_p99']:<7.2f}"
        )


if __name__ == "__main__":
    main()
