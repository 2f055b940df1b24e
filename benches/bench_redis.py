"""Redis backend primitives: bulk enqueue and a claim+complete drain (a plain script).

    /work/venv/bin/python benches/bench_redis.py [--jobs 10000] [--batch 50] [--repeat 3]

Prints jobs/s (best of ``--repeat`` runs; the machine may be shared) for:

- ``add_jobs`` of N jobs in one call, and in batches of 500 (the enqueue path);
- draining the queue with ``claim_jobs(limit=batch)`` + ``complete_jobs(batch)`` through the
  async backend, with 1 and with ``--workers`` concurrent claimers (the primitives a processor
  uses; the full processor throughput bench lives with the worker).

Each line also shows the Redis server's own time per job (INFO commandstats of EVALSHA), which
is what bounds throughput when several clients share one server. Every run uses a fresh random
key prefix, deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import redis
from dataqueue.backends.redis.backend_async import AsyncRedisBackend
from dataqueue.backends.redis.config import RedisSettings
from dataqueue.options import NewJob, normalize_job

LEASE = timedelta(seconds=60)


def _cleanup(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{prefix}*", count=1000):
        client.delete(key)
    client.close()


def _server_usec(admin: redis.Redis) -> float:
    stats = admin.info("commandstats").get("cmdstat_evalsha", {})
    return float(stats.get("usec", 0))


async def _drain(backend: AsyncRedisBackend, batch: int, workers: int) -> int:
    done = 0

    async def worker(name: str) -> None:
        nonlocal done
        while True:
            jobs = await backend.claim_jobs(name, batch, lease=LEASE)
            if not jobs:
                return
            ok = await backend.complete_jobs([(j.id, name, j.lock_version, None) for j in jobs])
            done += sum(ok)

    await asyncio.gather(*(worker(f"w{i}") for i in range(workers)))
    return done


async def _measure(
    url: str,
    admin: redis.Redis,
    repeat: int,
    setup: Callable[[AsyncRedisBackend], Awaitable[None]],
    run: Callable[[AsyncRedisBackend], Awaitable[int]],
) -> tuple[float, float]:
    """Best jobs/s over ``repeat`` fresh queues, and the server µs per job of that run."""
    best = (0.0, 0.0)
    for _ in range(repeat):
        prefix = f"dqbench_{uuid.uuid4().hex[:8]}:"
        backend = AsyncRedisBackend(RedisSettings.from_options(url, key_prefix=prefix))
        try:
            await setup(backend)
            before = _server_usec(admin)
            t0 = time.perf_counter()
            n = await run(backend)
            dt = time.perf_counter() - t0
            server = (_server_usec(admin) - before) / max(n, 1)
            if n / dt > best[0]:
                best = (n / dt, server)
        finally:
            await backend.close()
            _cleanup(url, prefix)
    return best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--url", default=os.environ.get("DATAQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    admin = redis.Redis.from_url(args.url)
    jobs: list[NewJob] = [
        normalize_job({"job_type": "bench", "payload": {"i": i}, "tags": ["b"]})
        for i in range(args.jobs)
    ]

    async def warm(b: AsyncRedisBackend) -> None:
        await b.add_jobs(jobs[:1])  # loads the script
        await b.claim_jobs("warm", 1, lease=LEASE)

    async def fill(b: AsyncRedisBackend) -> None:
        await b.add_jobs(jobs)

    async def add_one_call(b: AsyncRedisBackend) -> int:
        return len(await b.add_jobs(jobs))

    async def add_batches(b: AsyncRedisBackend) -> int:
        for i in range(0, len(jobs), 500):
            await b.add_jobs(jobs[i : i + 500])
        return len(jobs)

    def drain(workers: int) -> Callable[[AsyncRedisBackend], Awaitable[int]]:
        return lambda b: _drain(b, args.batch, workers)

    cases = [
        (f"add_jobs: {args.jobs} jobs in one call", warm, add_one_call),
        ("add_jobs: batches of 500", warm, add_batches),
        (f"claim({args.batch}) + complete_jobs, 1 worker", fill, drain(1)),
        (f"claim({args.batch}) + complete_jobs, {args.workers} workers", fill, drain(args.workers)),
    ]
    for name, setup, run in cases:
        rate, server = await _measure(args.url, admin, args.repeat, setup, run)
        print(f"{name:45s} {rate:9.0f} jobs/s   server {server:6.1f} µs/job")
    admin.close()


if __name__ == "__main__":
    asyncio.run(main())
