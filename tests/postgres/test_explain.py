"""The claim query's plan at scale: it must walk the claim index, never scan the table.

100,000 claimable jobs plus 50,000 jobs blocked on a prerequisite (as add_jobs writes them:
ready_at NULL until the prerequisite completes; priority 100, so a plan that had to skip them
would show it), checked right after a bulk load (never analysed, autovacuum off) and again
after ANALYZE. Plans are printed (``-s``).
"""

from __future__ import annotations

import json
import random
import time
from datetime import timedelta
from typing import Any

import psycopg
from dataqueue import batch_dep_ref
from dataqueue.backends.postgres.backend_sync import PostgresBackend
from dataqueue.backends.postgres.sql import CLAIM_PLANNER_SETTINGS
from dataqueue.options import normalize_job

from .helpers import explain, plan_nodes

# migrations/0009_ready_sets.sql: ungrouped due jobs, by type (typed and untyped claims)
CLAIM_INDEX = "job_queue_ready_idx"

BULK_LOAD = """
ALTER TABLE job_queue SET (autovacuum_enabled = false);
INSERT INTO job_queue (job_type, payload, priority, run_at, ready_at)
SELECT CASE WHEN g % 2 = 0 THEN 'even' ELSE 'odd' END, '{}', g % 10, now(), now()
FROM generate_series(1, 100000) g;
INSERT INTO job_queue (job_type, payload, priority, run_at, ready_at, depends_on_job_ids,
                       unmet_dependencies)
SELECT 'blocked', '{}', 100, now(), NULL, ARRAY[1::bigint], 1
FROM generate_series(1, 50000) g;
INSERT INTO job_dependencies (prerequisite_id, job_id)
SELECT 1, id FROM job_queue WHERE job_type = 'blocked';
"""


def _explain_analyze(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> str:
    # Runs the claim for real (that is what ANALYZE does), then rolls it back.
    with conn.transaction(force_rollback=True):
        conn.execute(CLAIM_PLANNER_SETTINGS)
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + query, params)
        return "\n".join(r[0] for r in rows)


def _check(plan: dict[str, Any], index: str = CLAIM_INDEX) -> None:
    nodes = plan_nodes(plan)
    claim_scans = [n for n in nodes if n.get("Index Name") == index and n.get("Alias") == "j"]
    assert claim_scans, f"claim did not use {index}: {json.dumps(plan)[:2000]}"
    assert claim_scans[0]["Node Type"] in ("Index Scan", "Index Only Scan")
    seq = [
        n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "job_queue"
    ]
    assert not seq, f"sequential scan of job_queue in the claim: {seq}"


def test_claim_plan_uses_the_claim_index(backend: PostgresBackend, pg_url: str) -> None:
    report: list[str] = []
    variants = {
        "claim (no filters)": (backend._q_claim[False], {}),
        "claim (job_types filter)": (backend._q_claim[True], {"types": ["odd"]}),
        "claim candidates (group_concurrency)": (
            backend._q_candidates[False],
            {"full": [], "seen": [], "cap": 2},
        ),
    }
    base = {
        "worker": "w",
        "lease": timedelta(seconds=30),
        "limit": 10,
        "types": None,
        "channel": backend.channel,
    }
    with psycopg.connect(pg_url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(BULK_LOAD.encode())
        load_s = time.perf_counter() - started
        for analysed in (False, True):
            if analysed:
                conn.execute("ANALYZE job_queue")
            reltuples = conn.execute(
                "SELECT reltuples FROM pg_class WHERE relname = 'job_queue'"
            ).fetchone()
            stage = "after ANALYZE" if analysed else "never analysed (right after bulk load)"
            report.append(f"=== {stage}; pg_class.reltuples = {reltuples[0] if reltuples else '?'}")
            for name, (query, extra) in variants.items():
                params = {**base, **extra}
                plan = explain(conn, query, params)
                _check(plan)
                text = _explain_analyze(conn, query, params)
                report.append(f"--- {name}\n{text}")
        # And for real, through the backend: the blocked jobs are never candidates.
        claimed = backend.claim_jobs("w", 10, lease=timedelta(seconds=30))
        assert len(claimed) == 10 and all(j.job_type != "blocked" for j in claimed)
        assert all(j.priority == 9 for j in claimed)
    header = (
        "EXPLAIN of the PostgreSQL claim (tests/postgres/test_explain.py): 100,000 claimable"
        " jobs + 50,000 blocked on a prerequisite (priority 100, outside the partial index);"
        f" bulk load took {load_s:.2f} s.\n"
    )
    text = header + "\n".join(report) + "\n"
    print(text)  # the plans, for whoever runs this with -s


def test_release_of_dependents_reads_edges_by_index(backend: PostgresBackend, pg_url: str) -> None:
    """Right after a DAG is enqueued (job_dependencies never analysed), a completion looks the
    dependents up through the edge key, not by reading every edge (migration 0011)."""
    rng = random.Random(7)  # a random DAG, as benches/bench_scale.py --dag drains
    jobs: list[dict[str, Any]] = []
    for i in range(10_000):
        prereqs = sorted({rng.randrange(i) for _ in range(rng.randint(0, 3))}) if i else []
        job: dict[str, Any] = {"job_type": "t", "payload": {}}
        if prereqs:
            job["depends_on"] = {"job_ids": [batch_dep_ref(p) for p in prereqs]}
        jobs.append(job)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE job_dependencies SET (autovacuum_enabled = false)")
    backend.add_jobs([normalize_job(j) for j in jobs])
    # A flush of 50 (a busy worker's completions pile up): with no statistics the planner
    # guessed 75 edges per id and read all 15,000.
    claimed = backend.claim_jobs("w", 50, lease=timedelta(seconds=30))
    assert len(claimed) == 50
    notices: list[str] = []
    with psycopg.connect(pg_url) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        for key, value in {
            "log_min_duration": "0",
            "log_nested_statements": "on",
            "log_level": "notice",
        }.items():
            conn.execute(f"SET auto_explain.{key} = '{value}'")
        conn.execute(
            backend._sql.complete_many,
            {
                "ids": [j.id for j in claimed],
                "workers": ["w"] * 50,
                "versions": [j.lock_version for j in claimed],
                "keep": [False] * 50,
                "outputs": [None] * 50,
                "channel": backend.channel,
                "done": "x",
            },
        )
        conn.commit()
    edge_plans = [n for n in notices if "FROM job_dependencies e" in n]
    assert edge_plans, notices
    assert all("Seq Scan" not in n for n in edge_plans), edge_plans
