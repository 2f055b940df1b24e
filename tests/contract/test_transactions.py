"""``db=``: enqueue inside the caller's transaction (Postgres); refused on Redis."""

from __future__ import annotations

from typing import Any

import pytest
from dataqueue import BackendNotSupportedError, JobEventType


def supports_db(q: Any, backend_name: str) -> bool:
    """db= is a Postgres feature: on Redis, assert it is refused (nothing written)."""
    if backend_name == "postgres":
        return True
    with pytest.raises(BackendNotSupportedError):
        q.add_job("t", db=object())
    with pytest.raises(BackendNotSupportedError):
        q.add_jobs([{"job_type": "t"}], db=object())
    assert q.get_all_jobs() == []
    return False


def _status_in_tx(conn: Any, job_id: int) -> Any:
    row = conn.execute("SELECT status FROM job_queue WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else row[0]


def test_add_job_rolled_back_with_the_transaction(q: Any, native: Any, backend_name: str) -> None:
    if not supports_db(q, backend_name):
        return
    conn = native.pg_connection()
    job_id = q.add_job("tx", {"v": 1}, db=conn)
    assert _status_in_tx(conn, job_id) == "pending"  # visible inside the transaction
    assert q.get_job(job_id) is None  # invisible outside until commit
    conn.rollback()
    assert q.get_job(job_id) is None
    assert q.get_job_events(job_id) == []
    assert q.get_all_jobs() == []


def test_add_job_committed_with_the_transaction(q: Any, native: Any, backend_name: str) -> None:
    if not supports_db(q, backend_name):
        return
    conn = native.pg_connection()
    job_id = q.add_job("tx", {"v": 1}, db=conn)
    conn.commit()
    job = q.get_job(job_id)
    assert job is not None and job.payload == {"v": 1}
    assert [e.event_type for e in q.get_job_events(job_id)] == [JobEventType.ADDED]


def test_add_job_with_a_cursor(q: Any, native: Any, backend_name: str) -> None:
    if not supports_db(q, backend_name):
        return
    conn = native.pg_connection()
    cur = conn.cursor()
    job_id = q.add_job("tx", db=cur)
    conn.commit()
    assert q.get_job(job_id) is not None


def test_add_jobs_in_transaction(q: Any, native: Any, backend_name: str) -> None:
    if not supports_db(q, backend_name):
        return
    conn = native.pg_connection()
    ids = q.add_jobs([{"job_type": "a"}, {"job_type": "b"}], db=conn)
    assert [_status_in_tx(conn, i) for i in ids] == ["pending", "pending"]
    conn.rollback()
    assert q.get_all_jobs() == []
    ids = q.add_jobs([{"job_type": "a"}, {"job_type": "b"}], db=conn)
    conn.commit()
    assert sorted(j.id for j in q.get_all_jobs()) == sorted(ids)


def test_transaction_sees_its_own_dependency_batch(q: Any, native: Any, backend_name: str) -> None:
    if not supports_db(q, backend_name):
        return
    from dataqueue import batch_dep_ref

    conn = native.pg_connection()
    first = q.add_job("first", db=conn)
    second, third = q.add_jobs(
        [
            {"job_type": "second", "depends_on": {"job_ids": [first]}},
            {"job_type": "third", "depends_on": {"job_ids": [batch_dep_ref(0)]}},
        ],
        db=conn,
    )
    conn.commit()
    assert q.get_job(third).depends_on_job_ids == (second,)


def test_db_refused_on_redis(q: Any, backend_name: str) -> None:
    assert supports_db(q, backend_name) == (backend_name == "postgres")
