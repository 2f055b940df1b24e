#!/usr/bin/env python3
"""Enqueue throughput of the PostgreSQL backend (prints numbers; no assertions).

- ``add_jobs`` of 10,000 jobs with dependencies (chains of 10 via ``batch_dep_ref``), and
  without dependencies, through the blocking backend (``PostgresBackend``);
- a single-job ``add_jobs`` round trip vs a raw one-row ``INSERT … RETURNING id`` with psycopg;
- a raw ``COPY`` of 10,000 rows for reference;
- claim + complete of those jobs by one thread (a reference for the worker side).

Usage: ``/work/venv/bin/python benches/bench_pg_enqueue.py [--url URL] [--jobs N]``. A scratch
database is created on the server (``DATAQUEUE_TEST_PG_URL``) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import psycopg
from dataqueue import batch_dep_ref
from dataqueue.backends.postgres.backend_sync import PostgresBackend
from dataqueue.backends.postgres.config import PostgresSettings
from dataqueue.backends.postgres.migrate import migrate_sync
from dataqueue.options import NewJob, normalize_job
from psycopg import sql

ADMIN = os.environ.get(
    "DATAQUEUE_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)


def _db_url(admin: str, name: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path="/" + name))


def _best(runs: int, fn: Callable[[], float]) -> tuple[float, float]:
    times = [fn() for _ in range(runs)]
    return min(times), statistics.median(times)


def chain_batch(n: int, chain: int = 10) -> list[NewJob]:
    """n jobs in chains of ``chain``: each job depends on the previous one of its chain."""
    jobs = []
    for i in range(n):
        deps = {"job_ids": [batch_dep_ref(i - 1)]} if i % chain else None
        jobs.append(
            normalize_job(
                {"job_type": "bench", "payload": {"i": i, "data": "x" * 32}, "depends_on": deps}
            )
        )
    return jobs


def plain_batch(n: int) -> list[NewJob]:
    return [normalize_job({"job_type": "bench", "payload": {"i": i, "data": "x" * 32}})
            for i in range(n)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=ADMIN, help="server (admin) URL")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--singles", type=int, default=2000)
    args = parser.parse_args()

    name = f"dq_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _db_url(args.url, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate_sync(conn)
        backend = PostgresBackend(PostgresSettings.from_options(url))
        n = args.jobs

        # -- batches ---------------------------------------------------------------------------
        def timed_batch(make: Callable[[int], list[NewJob]], include_normalize: bool) -> float:
            if include_normalize:
                start = time.perf_counter()
                jobs = make(n)
            else:
                jobs = make(n)
                start = time.perf_counter()
            backend.add_jobs(jobs)
            return time.perf_counter() - start

        backend.add_jobs(chain_batch(100))  # warm up the pool and the statement cache
        print(f"add_jobs of {n} jobs (best / median of {args.runs}):")
        for label, make in (("with dependencies (chains of 10)", chain_batch),
                            ("without dependencies", plain_batch)):  # fmt: skip
            for include in (False, True):
                best, med = _best(args.runs, lambda m=make, inc=include: timed_batch(m, inc))
                what = "normalize + add_jobs" if include else "add_jobs (backend)"
                print(f"  {label:34} {what:22} {n / best:10,.0f} jobs/s best"
                      f"  {n / med:10,.0f} jobs/s median")  # fmt: skip

        # -- single job round trips ------------------------------------------------------------
        one = [normalize_job({"job_type": "single", "payload": {"a": 1}})]
        singles = args.singles
        for _ in range(50):
            backend.add_jobs(one)

        def backend_single() -> float:
            start = time.perf_counter()
            for _ in range(chunk):
                backend.add_jobs(one)
            return (time.perf_counter() - start) / chunk

        with psycopg.connect(url, autocommit=True) as raw:
            insert = "INSERT INTO job_queue (job_type, payload) VALUES (%s, %s::jsonb) RETURNING id"
            for _ in range(50):
                raw.execute(insert, ("raw", '{"a":1}')).fetchone()

            def raw_single() -> float:
                start = time.perf_counter()
                for _ in range(chunk):
                    raw.execute(insert, ("raw", '{"a":1}')).fetchone()
                return (time.perf_counter() - start) / chunk

            # The least any enqueue with an event must do: job row + event row in one statement.
            pair = (
                "WITH ins AS (INSERT INTO job_queue (job_type, payload, ready_at)"
                " VALUES (%s, %s::jsonb, now()) RETURNING id, job_type, payload),"
                " ev AS (INSERT INTO job_events (job_id, event_type, metadata)"
                " SELECT id, 'added', jsonb_build_object('job_type', job_type, 'payload', payload)"
                " FROM ins) SELECT id FROM ins"
            )

            def raw_pair() -> float:
                start = time.perf_counter()
                for _ in range(chunk):
                    raw.execute(pair, ("raw", '{"a":1}')).fetchone()
                return (time.perf_counter() - start) / chunk

            # Interleaved rounds (A B C A B C …) so load from other processes hits all alike.
            chunk = max(1, singles // 10)
            b_times, r_times, p_times = [], [], []
            for _ in range(10):
                b_times.append(backend_single())
                r_times.append(raw_single())
                p_times.append(raw_pair())
            b_best, b_med = min(b_times), statistics.median(b_times)
            r_best, r_med = min(r_times), statistics.median(r_times)
            p_best, p_med = min(p_times), statistics.median(p_times)
            print(f"single job, 10 interleaved rounds of {chunk} sequential calls (best / median):")
            print(f"  backend add_jobs([job])   {b_best * 1e6:8.0f} µs  {b_med * 1e6:8.0f} µs"
                  "   (job row + 'added' event + NOTIFY, one statement)")  # fmt: skip
            print(f"  raw psycopg INSERT        {r_best * 1e6:8.0f} µs  {r_med * 1e6:8.0f} µs"
                  "   (one row)")  # fmt: skip
            print(f"  raw job + event statement {p_best * 1e6:8.0f} µs  {p_med * 1e6:8.0f} µs"
                  "   (two rows, one statement, no NOTIFY)")  # fmt: skip
            print(f"  ratio backend / raw INSERT {b_best / r_best:8.2f}x   {b_med / r_med:8.2f}x")
            print(f"  ratio backend / raw pair   {b_best / p_best:8.2f}x   {b_med / p_med:8.2f}x")

            # -- COPY reference ----------------------------------------------------------------
            def copy_rows() -> float:
                start = time.perf_counter()
                with (
                    raw.cursor() as cur,
                    cur.copy("COPY job_queue (job_type, payload, ready_at) FROM STDIN") as copy,
                ):
                    for i in range(n):
                        copy.write_row(("copy", f'{{"i":{i}}}', None))
                return time.perf_counter() - start

            best, med = _best(args.runs, copy_rows)
            print(f"raw COPY of {n} rows (jobs only, no events): {n / best:10,.0f} rows/s best"
                  f"  {n / med:10,.0f} rows/s median")  # fmt: skip
        # -- claim + complete (reference for the worker side) ----------------------------------
        with psycopg.connect(url, autocommit=True) as raw:
            raw.execute("TRUNCATE job_queue, job_events, job_dependencies, waitpoints")
        backend.add_jobs(plain_batch(n))
        lease = timedelta(seconds=60)
        start = time.perf_counter()
        done = 0
        while True:
            jobs = backend.claim_jobs("bench", 50, lease=lease)
            if not jobs:
                break
            for job in jobs:
                backend.complete_job(job.id, "bench", job.lock_version, None)
            done += len(jobs)
        elapsed = time.perf_counter() - start
        print(f"claim (batches of 50) + complete each, one thread: {done / elapsed:,.0f} jobs/s")
        backend.close()
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
