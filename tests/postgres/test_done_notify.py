"""The "jobs finished" notification is sent only for jobs someone waits for (migration 0011):
a notifying transaction holds a cluster-wide lock through its commit flush, so completions of
jobs nobody awaits must not notify. ``watch_job`` (what ``wait_for_job`` reads through) marks
the job; every way of finishing a marked job then notifies."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from dataqueue.backends.postgres.backend_sync import PostgresBackend
from dataqueue.lifecycle import plan_failure
from dataqueue.records import FailureReason, JobStatus
from psycopg import sql as pgsql

from .helpers import add, claim_one


def _listen(conn: psycopg.Connection[Any], channel: str) -> None:
    conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(channel)))


def _got(conn: psycopg.Connection[Any], channel: str, timeout: float = 0.3) -> int:
    return sum(1 for n in conn.notifies(timeout=timeout) if n.channel == channel)


def _finish_every_way(backend: PostgresBackend, watched: str | None) -> dict[str, int]:
    """Complete one job, fail one for good, cancel one and thereby cascade-cancel its
    dependent; ``watched`` names the one ``watch_job`` marks first (None: none)."""
    ids = {
        "complete": add(backend, "c"),
        "fail": add(backend, "f", max_attempts=1),
        "cancel": add(backend, "x"),
    }
    ids["cascade"] = add(backend, "d", depends_on={"job_ids": [ids["cancel"]]})
    if watched is not None:
        record = backend.watch_job(ids[watched])
        assert record is not None and record.id == ids[watched]
    done = claim_one(backend, job_types=["c"])
    assert backend.complete_jobs([(done.id, "w", done.lock_version, None)]) == [True]
    failing = claim_one(backend, job_types=["f"])
    plan = plan_failure(failing, "boom", FailureReason.HANDLER_ERROR, retry_delay_seconds=1)
    assert backend.fail_job(failing.id, "w", failing.lock_version, plan).applied
    assert backend.cancel_job(ids["cancel"])
    cascaded = backend.get_job(ids["cascade"])
    assert cascaded is not None and cascaded.status is JobStatus.CANCELLED
    return ids


def test_finishing_unwatched_jobs_sends_no_done_notification(
    backend: PostgresBackend, sql: psycopg.Connection[Any]
) -> None:
    _listen(sql, backend.done_channel)
    _finish_every_way(backend, watched=None)
    assert _got(sql, backend.done_channel) == 0


@pytest.mark.parametrize("way", ["complete", "fail", "cancel", "cascade"])
def test_finishing_a_watched_job_notifies(
    backend: PostgresBackend, sql: psycopg.Connection[Any], way: str
) -> None:
    _listen(sql, backend.done_channel)
    _finish_every_way(backend, watched=way)
    # Duplicates within one transaction fold into one; the transitions run in three.
    assert _got(sql, backend.done_channel, timeout=1) == 1


def test_watch_marks_once_and_reads_like_get_job(
    backend: PostgresBackend, sql: psycopg.Connection[Any]
) -> None:
    job_id = add(backend, "t")
    assert backend.watch_job(job_id) == backend.get_job(job_id)
    assert backend.watch_job(job_id) == backend.get_job(job_id)  # marked already: a plain read
    row = sql.execute("SELECT result_wanted FROM job_queue WHERE id = %s", [job_id]).fetchone()
    assert row == (True,)
    assert backend.watch_job(job_id + 1000) is None
