"""Dashboard latency and database cost with 1,000,000 jobs (a plain script).

    python benches/bench_dashboard.py [--backend postgres|redis|both] [--jobs 1000000]

Loads N jobs into a storage of its own (PostgreSQL: a fresh database ``dq_bench_dashboard``;
Redis: a fresh key prefix), then times every API endpoint and page through the ASGI app
in-process (median and max of ``--repeat`` calls; the app's own work included), and the
database cost of an open overview: the database time of one overview refresh divided by the
refresh period (default 10 s, the dashboard's default). PostgreSQL: the wall time of the
overview's three queries as the client sees them (an upper bound on server time); Redis: the
server's own time (``INFO commandstats``) spent on one refresh.

PostgreSQL jobs are written with one INSERT … SELECT generate_series (the bench measures
reads, and this is the quick way to a realistic mix): ~92% completed, 2% failed, 1% cancelled,
4% pending (a quarter of them blocked on a prerequisite), 1% waiting, 50 processing, over six
job types, created over the last ~14 hours, plus one job with 10,000 dependents (the large
graph). Redis jobs go through the public enqueue (``add_jobs``) and the worker primitives
(claim, complete, fail), so the mix there is mostly pending.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

PG_ADMIN = os.environ.get(
    "DATAQUEUE_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("DATAQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DB = "dq_bench_dashboard"
TYPES = ("email", "resize", "export", "sync", "report", "webhook")
FANOUT = 10_000


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN.rpartition("/")
    return f"{base}/{dbname}"


def load_postgres(n: int) -> tuple[str, dict[str, int]]:
    import psycopg
    from dataqueue import init_job_queue

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    url = _pg_url(DB)
    q = init_job_queue(url)
    q.migrate()
    q.close()
    t0 = time.perf_counter()
    types = "ARRAY[" + ",".join(f"'{t}'" for t in TYPES) + "]"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"""
INSERT INTO job_queue (job_type, payload, status, created_at, updated_at, run_at, attempts,
    ready_at, unmet_dependencies, completed_at, error_history, last_failed_at, failure_reason,
    locked_by, locked_at, lease_expires_at, tags, last_cancelled_at)
SELECT t, jsonb_build_object('n', i, 'to', 'user' || i || '@example.com'), st, c,
    CASE WHEN st IN ('completed', 'failed', 'cancelled') THEN c + interval '1 second' ELSE c END,
    c, CASE WHEN st IN ('pending', 'waiting') THEN 0 ELSE 1 END,
    CASE WHEN st = 'pending' AND i %% 400 <> 3 THEN c END,
    CASE WHEN st = 'pending' AND i %% 400 = 3 THEN 1 ELSE 0 END,
    CASE WHEN st = 'completed' THEN c + interval '1 second' END,
    CASE WHEN st = 'failed' THEN jsonb_build_array(jsonb_build_object(
        'message', 'HTTP 503 from upstream ' || (i %% 7), 'timestamp', c)) ELSE '[]'::jsonb END,
    CASE WHEN st = 'failed' THEN c + interval '1 second' END,
    CASE WHEN st = 'failed' THEN 'handler_error' END,
    CASE WHEN st = 'processing' THEN 'worker-' || (i %% 4) END,
    CASE WHEN st = 'processing' THEN now() END,
    CASE WHEN st = 'processing' THEN now() + interval '30 seconds' END,
    CASE WHEN i %% 10 = 0 THEN ARRAY['tenant-' || (i %% 50)] END,
    CASE WHEN st = 'cancelled' THEN c + interval '1 second' END
FROM (
    SELECT i, ({types})[1 + i %% 6] AS t,
        now() - (%(n)s - i) * interval '50 milliseconds' AS c,
        CASE WHEN i %% 20000 = 8 THEN 'processing'
             WHEN i %% 100 < 2 THEN 'failed'
             WHEN i %% 100 = 2 THEN 'cancelled'
             WHEN i %% 100 BETWEEN 3 AND 6 THEN 'pending'
             WHEN i %% 100 = 7 THEN 'waiting'
             ELSE 'completed' END AS st
    FROM generate_series(1, %(n)s) AS i
) s""",
            {"n": n},
        )
        root = conn.execute(
            "INSERT INTO job_queue (job_type, payload, status, ready_at) "
            "VALUES ('fanout_root', '{}', 'pending', now()) RETURNING id"
        ).fetchone()
        assert root is not None
        root_id = int(root[0])
        conn.execute(
            "WITH d AS (INSERT INTO job_queue (job_type, payload, status, depends_on_job_ids, "
            "unmet_dependencies) SELECT 'fanout_leaf', '{}', 'pending', ARRAY[%(r)s::bigint], 1 "
            "FROM generate_series(1, %(k)s) RETURNING id) "
            "INSERT INTO job_dependencies (prerequisite_id, job_id) SELECT %(r)s, id FROM d",
            {"r": root_id, "k": FANOUT},
        )
        failed = conn.execute(
            "SELECT id FROM job_queue WHERE status = 'failed' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        pending = conn.execute(
            "SELECT id FROM job_queue WHERE status = 'pending' AND job_type = 'email' "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        conn.execute("VACUUM ANALYZE job_queue")
        conn.execute("VACUUM ANALYZE job_dependencies")
    print(f"postgres: loaded {n + FANOUT + 1:,} jobs in {time.perf_counter() - t0:.1f} s")
    assert failed is not None and pending is not None
    return url, {"root": root_id, "failed": int(failed[0]), "pending": int(pending[0])}


def load_redis(n: int, prefix: str) -> dict[str, int]:
    from datetime import timedelta

    from dataqueue import init_job_queue
    from dataqueue.lifecycle import plan_failure

    q = init_job_queue(REDIS_URL, key_prefix=prefix)
    t0 = time.perf_counter()
    chunk = 5000
    for start in range(0, n, chunk):
        q.add_jobs(
            [
                {
                    "job_type": TYPES[i % 6],
                    "payload": {"n": i, "to": f"user{i}@example.com"},
                    "tags": [f"tenant-{i % 50}"] if i % 10 == 0 else None,
                }
                for i in range(start, min(n, start + chunk))
            ]
        )
    root = q.add_job("fanout_root")
    for start in range(0, FANOUT, chunk):
        q.add_jobs(
            [
                {"job_type": "fanout_leaf", "depends_on": {"job_ids": [root]}}
                for _ in range(min(chunk, FANOUT - start))
            ]
        )
    b = q._backend
    lease = timedelta(seconds=60)
    done = 0
    failed_id = 0
    target = max(1, n // 10)
    while done < target:
        jobs = b.claim_jobs("bench", 500, job_types=list(TYPES), lease=lease)
        if not jobs:
            break
        keep = [j for j in jobs if j.id % 50 != 0]
        b.complete_jobs([(j.id, "bench", j.lock_version, None) for j in keep])
        for j in jobs:
            if j.id % 50 == 0:
                plan = plan_failure(j, "HTTP 503 from upstream 3", None, retry_delay_seconds=3600)
                b.fail_job(j.id, "bench", j.lock_version, plan)
                failed_id = j.id
        done += len(jobs)
    # (failures retry in an hour, so they stay failed during the bench)
    pending = q.get_jobs({"job_type": "email"}, limit=1)[0].id
    q.close()
    print(
        f"redis: loaded {n + FANOUT + 1:,} jobs, ran {done:,} of them in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return {"root": root, "failed": failed_id, "pending": pending}


def endpoints(ids: dict[str, int]) -> list[str]:
    j = ids["pending"]
    return [
        "/api/overview",
        "/api/counts",
        "/api/jobs",
        "/api/jobs?status=failed",
        "/api/jobs?status=pending&job_type=email",
        "/api/jobs?job_type=report&tags=tenant-0",
        "/api/jobs?error=upstream%203",
        f"/api/jobs/{j}",
        f"/api/jobs/{j}/events",
        f"/api/jobs/{ids['failed']}",
        f"/api/jobs/{ids['root']}/graph",
        f"/api/jobs/{j}/graph",
        "/api/cron",
        "/",
        "/jobs",
        "/jobs?status=failed",
        f"/jobs/{j}",
        f"/jobs/{ids['root']}/graph",
        "/cron",
    ]


def time_app(make_queue: Callable[[], Any], ids: dict[str, int], repeat: int) -> None:
    from dataqueue.dashboard import create_app
    from starlette.testclient import TestClient

    aq = make_queue()
    # refresh 0.2 s: the overview cache expires between calls, so each call recomputes it.
    app = create_app(aq, refresh_seconds=0.2)
    with TestClient(app, client=("127.0.0.1", 1)) as c:
        # One untimed pass first: script loading, first connections, template compilation.
        for path in endpoints(ids):
            c.get(path)
        print(f"{'endpoint':48} {'median ms':>10} {'max ms':>8}  status")
        for path in endpoints(ids):
            times = []
            status = 0
            for _ in range(repeat):
                time.sleep(0.21)
                t = time.perf_counter()
                r = c.get(path)
                times.append((time.perf_counter() - t) * 1000)
                status = r.status_code
            print(f"{path:48} {statistics.median(times):10.1f} {max(times):8.1f}  {status}")
        c.portal.call(aq.close)
    print("load average after timing: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


async def _overview_queries(aq: Any) -> None:
    from datetime import datetime, timedelta, timezone

    from dataqueue.dashboard.data import (
        COUNT_CAP,
        FINISHED_SAMPLE,
        OVERVIEW_STATUSES,
        PROCESSING_SAMPLE,
    )
    from dataqueue.records import JobStatus

    b = aq._backend
    await b.count_jobs(COUNT_CAP, OVERVIEW_STATUSES)
    await b.recent_finished(datetime.now(timezone.utc) - timedelta(hours=1), FINISHED_SAMPLE)
    await aq.get_jobs_by_status(JobStatus.PROCESSING, PROCESSING_SAMPLE)


def overview_cost_pg(url: str, repeat: int, period: float) -> None:
    from dataqueue import init_async_job_queue

    async def main() -> list[float]:
        aq = init_async_job_queue(url)
        out = []
        try:
            await _overview_queries(aq)  # warm the pool
            for _ in range(repeat):
                t = time.perf_counter()
                await _overview_queries(aq)
                out.append(time.perf_counter() - t)
        finally:
            await aq.close()
        return out

    times = asyncio.run(main())
    med = statistics.median(times)
    print(
        f"open overview: {med * 1000:.1f} ms of database time (client-side upper bound) per "
        f"refresh every {period:.0f} s = {med / period * 100:.2f}% of one database core"
    )


def overview_cost_redis(prefix: str, repeat: int, period: float) -> None:
    import redis
    from dataqueue import init_async_job_queue

    client = redis.Redis.from_url(REDIS_URL)

    def server_usec() -> int:
        stats = client.info("commandstats")
        return sum(int(v["usec"]) for v in stats.values())

    async def main() -> tuple[list[float], list[float]]:
        aq = init_async_job_queue(REDIS_URL, key_prefix=prefix)
        server, wall = [], []
        try:
            await _overview_queries(aq)
            for _ in range(max(repeat, 10)):
                before = server_usec()
                t = time.perf_counter()
                await _overview_queries(aq)
                wall.append(time.perf_counter() - t)
                server.append((server_usec() - before) / 1e6)
        finally:
            await aq.close()
        return server, wall

    server, wall = asyncio.run(main())
    client.close()
    # INFO commandstats is server-wide: other clients' commands during a refresh inflate a
    # sample, never deflate it, so the least sample is the closest to the overview's own cost.
    low, med, wmed = min(server), statistics.median(server), statistics.median(wall)
    print(
        f"open overview: {low * 1000:.1f} ms of Redis server time (least of INFO commandstats "
        f"deltas; median {med * 1000:.1f} ms with other clients' commands) per refresh every "
        f"{period:.0f} s = {low / period * 100:.2f}% of the server's time (median "
        f"{med / period * 100:.2f}%); client-side wall time {wmed * 1000:.1f} ms = "
        f"{wmed / period * 100:.2f}% (upper bound)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["postgres", "redis", "both"], default="both")
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--period", type=float, default=10.0, help="overview refresh period, s")
    ap.add_argument("--keep", action="store_true", help="keep the loaded data")
    args = ap.parse_args()
    from dataqueue import init_async_job_queue

    print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))

    if args.backend in ("postgres", "both"):
        url, ids = load_postgres(args.jobs)
        try:
            time_app(lambda: init_async_job_queue(url), ids, args.repeat)
            overview_cost_pg(url, args.repeat, args.period)
        finally:
            if not args.keep:
                import psycopg

                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    if args.backend in ("redis", "both"):
        prefix = f"dqbench_{uuid.uuid4().hex[:8]}:"
        try:
            ids = load_redis(args.jobs, prefix)
            time_app(lambda: init_async_job_queue(REDIS_URL, key_prefix=prefix), ids, args.repeat)
            overview_cost_redis(prefix, args.repeat, args.period)
        finally:
            if not args.keep:
                import redis

                client = redis.Redis.from_url(REDIS_URL)
                batch = []
                for key in client.scan_iter(f"{prefix}*", count=5000):
                    batch.append(key)
                    if len(batch) >= 5000:
                        client.unlink(*batch)
                        batch.clear()
                if batch:
                    client.unlink(*batch)
                client.close()


if __name__ == "__main__":
    main()
