"""Redis backend primitives: bulk enqueue and a claim+complete drain (a plain script).

    /work/venv/bin/python benches/bench_redis.py [--jobs 10000] [--batch 50] [--url redis://...]

Prints jobs/s for: add_jobs of N jobs in one call (the enqueue path), add_jobs in batches of
500, and draining the queue with claim_jobs(limit=batch) + complete_jobs(batch) through the
async backend (the primitives a processor uses; the full processor throughput bench lives
with the worker). Runs under a fresh random key prefix and deletes it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import timedelta

import redis
from dataqueue.backends.redis.backend_async import AsyncRedisBackend
from dataqueue.backends.redis.config import RedisSettings
from dataqueue.options import normalize_job

LEASE = timedelta(seconds=60)


def _cleanup(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{prefix}*", count=1000):
        client.delete(key)
    client.close()


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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--url", default=os.environ.get("DATAQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    prefix = f"dqbench_{uuid.uuid4().hex[:8]}:"
    backend = AsyncRedisBackend(RedisSettings.from_options(args.url, key_prefix=prefix))
    try:
        jobs = [
            normalize_job({"job_type": "bench", "payload": {"i": i}, "tags": ["b"]})
            for i in range(args.jobs)
        ]
        await backend.add_jobs(jobs[:10])  # warm up: script load
        t0 = time.perf_counter()
        await backend.add_jobs(jobs)
        t_one = time.perf_counter() - t0
        print(f"add_jobs, {args.jobs} jobs in one call:   {args.jobs / t_one:10.0f} jobs/s")

        t0 = time.perf_counter()
        for i in range(0, args.jobs, 500):
            await backend.add_jobs(jobs[i : i + 500])
        t_many = time.perf_counter() - t0
        print(f"add_jobs, batches of 500:           {args.jobs / t_many:10.0f} jobs/s")

        for workers in (1, args.workers):
            if workers != 1:
                await backend.add_jobs(jobs)
            t0 = time.perf_counter()
            n = await _drain(backend, args.batch, workers)
            dt = time.perf_counter() - t0
            print(
                f"claim({args.batch})+complete_jobs, {workers} worker(s): {n / dt:8.0f} jobs/s "
                f"({n} jobs)"
            )
    finally:
        await backend.close()
        _cleanup(args.url, prefix)


if __name__ == "__main__":
    asyncio.run(main())
