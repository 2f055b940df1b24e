"""Small helpers shared by the PostgreSQL backend tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dataqueue.backends.postgres.backend_sync import PostgresBackend
from dataqueue.options import normalize_job
from dataqueue.records import JobRecord

LEASE = timedelta(seconds=30)


def add(backend: PostgresBackend, job_type: str = "t", **options: Any) -> int:
    """Enqueue one job through the backend; return its id."""
    return backend.add_jobs([normalize_job({"job_type": job_type, **options})])[0].id


def claim_one(backend: PostgresBackend, worker: str = "w", **options: Any) -> JobRecord:
    """Claim exactly one job (fails the test if none is claimable)."""
    jobs = backend.claim_jobs(worker, 1, lease=LEASE, **options)
    assert len(jobs) == 1, f"expected one claimable job, got {jobs}"
    return jobs[0]
