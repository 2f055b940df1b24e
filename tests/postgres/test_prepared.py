"""The hot worker statements (claim, batched completion) are prepared on a connection's first
use — but never on connections that turned prepared statements off (``prepare_threshold=None``,
as behind a transaction-pooling PgBouncer)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dataqueue.backends.postgres.backend_sync import PostgresBackend
from dataqueue.backends.postgres.config import PostgresSettings
from dataqueue.backends.types import KEEP
from dataqueue.records import JobStatus
from psycopg_pool import ConnectionPool

from .helpers import add


def _claim_and_complete(backend: PostgresBackend) -> list[int]:
    jobs = backend.claim_jobs("w", 10, lease=timedelta(seconds=30))
    assert backend.complete_jobs([(j.id, "w", j.lock_version, KEEP) for j in jobs]) == [True] * 2
    return [j.id for j in jobs]


def _prepared(backend: PostgresBackend) -> list[str]:
    with backend.pool.connection() as conn:
        rows = conn.execute("SELECT statement FROM pg_prepared_statements").fetchall()
    return [r[0] for r in rows]


def test_hot_statements_prepared_at_first_use(make_backend: Any) -> None:
    backend = make_backend(
        database_config={"max_size": 1}
    )  # one connection: what we inspect is what ran
    ids = [add(backend, "t") for _ in range(2)]
    assert sorted(_claim_and_complete(backend)) == sorted(ids)
    prepared = _prepared(backend)
    assert any("FOR UPDATE OF j SKIP LOCKED" in s for s in prepared), prepared
    assert any("dataqueue_complete_many" in s for s in prepared), prepared


def test_nothing_prepared_when_the_callers_pool_disables_it(pg_url: str) -> None:
    pool = ConnectionPool(
        pg_url,
        min_size=1,
        max_size=1,
        kwargs={"autocommit": True, "prepare_threshold": None},
        open=False,
    )
    pool.open(wait=True)
    backend = PostgresBackend(PostgresSettings.from_options(pool=pool))
    try:
        ids = [add(backend, "t") for _ in range(2)]
        for _ in range(3):  # more than once: nothing may be prepared on later calls either
            assert sorted(_claim_and_complete(backend)) == sorted(ids)
            assert all(backend.get_job(i).status == JobStatus.COMPLETED for i in ids)  # type: ignore[union-attr]
            ids = [add(backend, "t") for _ in range(2)]
        assert _prepared(backend) == []
    finally:
        backend.close()
        pool.close()


def test_claims_reuse_one_generic_plan(make_backend: Any, sql: Any) -> None:
    # Enough pending jobs that a generic plan costed for an unknown LIMIT would lose to
    # custom plans (PostgreSQL would then plan every claim): the claim's LIMIT is a constant.
    sql.execute(
        "INSERT INTO job_queue (job_type, payload, run_at, ready_at)"
        " SELECT 't', '{}', now(), now() FROM generate_series(1, 100000)"
    )
    sql.execute("ANALYZE job_queue")
    backend = make_backend(database_config={"max_size": 1})
    for _ in range(15):
        assert len(backend.claim_jobs("w", 10, lease=timedelta(seconds=30))) == 10
    with backend.pool.connection() as conn:
        plans = conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%FOR UPDATE OF j SKIP LOCKED%'"
        ).fetchall()
    assert len(plans) == 1, plans
    generic, custom = plans[0]
    assert custom <= 5 and generic >= 10, plans  # PostgreSQL tries 5 custom plans first
