"""Small helpers shared by the PostgreSQL backend tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from dataqueue.backends.postgres.backend_sync import PostgresBackend
from dataqueue.backends.postgres.sql import CLAIM_PLANNER_SETTINGS
from dataqueue.options import normalize_job
from dataqueue.records import JobRecord

LEASE = timedelta(seconds=30)


def add(backend: PostgresBackend, job_type: str = "t", **options: Any) -> int:
    """Enqueue one job through the backend; return its id."""
    return backend.add_jobs([normalize_job({"job_type": job_type, **options})])[0].id


def bulk_load(backend: PostgresBackend, pg_url: str, script: str) -> None:
    """Migrate the test database, then run a bulk-load SQL script on it in one round trip."""
    backend.migrate()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(script.encode())


def claim_one(backend: PostgresBackend, worker: str = "w", **options: Any) -> JobRecord:
    """Claim exactly one job (fails the test if none is claimable)."""
    jobs = backend.claim_jobs(worker, 1, lease=LEASE, **options)
    assert len(jobs) == 1, f"expected one claimable job, got {jobs}"
    return jobs[0]


# -- query plans ------------------------------------------------------------------------------
def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first."""
    out = [plan]
    for child in plan.get("Plans", ()):
        out.extend(plan_nodes(child))
    return out


def explain(
    conn: psycopg.Connection[Any], query: str, params: dict[str, Any], options: str = ""
) -> Any:
    """The JSON plan of ``query`` as the backend runs it: in a transaction that starts with the
    claim's planner settings, rolled back (``ANALYZE`` runs the statement for real)."""
    with conn.transaction(force_rollback=True):
        conn.execute(CLAIM_PLANNER_SETTINGS)
        head = f"EXPLAIN ({options}, FORMAT JSON) " if options else "EXPLAIN (FORMAT JSON) "
        row = conn.execute(head + query, params).fetchone()
    assert row is not None
    return row[0][0]["Plan"]


def plan_buffers(plan: dict[str, Any]) -> int:
    """Shared buffers a plan node touched (hit or read)."""
    return int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))
