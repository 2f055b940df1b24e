"""Migration runner: fresh apply, idempotence, concurrent runners, custom schemas, packaging."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dataqueue.backends.postgres.migrate import load_migrations, migrate_sync
from dataqueue.errors import MigrationError
from dataqueue.lifecycle import plan_failure

from .helpers import add, claim_one

REPO_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
TABLES = {"job_queue", "job_events", "job_dependencies", "waitpoints", "cron_schedules"}


def _tables(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return {r[0] for r in rows}


def test_migrations_are_found_in_the_package_and_ordered() -> None:
    names = [m.name for m in load_migrations()]
    assert names == sorted(names) and names[0].startswith("0001_")
    assert names == sorted(p.stem for p in REPO_MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def test_fresh_apply_then_idempotent(empty_pg_url: str) -> None:
    with psycopg.connect(empty_pg_url, autocommit=True) as conn:
        first = migrate_sync(conn)
        second = migrate_sync(conn)
        recorded = [r[0] for r in conn.execute("SELECT name FROM dataqueue_migrations ORDER BY 1")]
    assert first == [m.name for m in load_migrations()]
    assert second == []
    assert recorded == first
    assert _tables(empty_pg_url, "public") >= TABLES


def test_backend_migrate_reports_applied(empty_pg_url: str, make_backend: Any) -> None:
    backend = make_backend(empty_pg_url)
    assert backend.migrate() == [m.name for m in load_migrations()]
    assert backend.migrate() == []
    job_id = add(backend)
    assert claim_one(backend).id == job_id


def test_concurrent_runners_apply_each_file_once(empty_pg_url: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            with psycopg.connect(empty_pg_url, autocommit=True) as conn:
                barrier.wait()
                results.append(migrate_sync(conn))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    applied = sorted(name for names in results for name in names)
    assert applied == sorted(m.name for m in load_migrations())


@pytest.mark.parametrize("schema", ["dq_custom", 'Odd "Schema" name'])
def test_custom_schema(empty_pg_url: str, make_backend: Any, schema: str) -> None:
    backend = make_backend(empty_pg_url, schema=schema)
    assert backend.migrate()
    assert backend.migrate() == []
    assert _tables(empty_pg_url, schema) >= TABLES
    assert not (TABLES & _tables(empty_pg_url, "public"))
    # Everything works in the schema: enqueue, dependencies, claim, complete, cascade.
    first = add(backend, max_attempts=1)
    second = add(backend, depends_on={"job_ids": [first]})
    job = claim_one(backend)
    assert job.id == first
    plan = plan_failure(job, "boom", None, retry_delay_seconds=0)
    assert not backend.fail_job(job.id, "w", job.lock_version, plan).will_retry
    cancelled = backend.get_job(second)
    assert cancelled is not None and cancelled.status == "cancelled"


def test_a_broken_migration_is_rolled_back(empty_pg_url: str, tmp_path: Path) -> None:
    from dataqueue.backends.postgres import migrate

    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok_table (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE bad_table (id int); SELECT 1/0;")
    steps = load_migrations(tmp_path)
    original = migrate.load_migrations
    migrate.load_migrations = lambda directory=None: steps  # type: ignore[assignment]
    try:
        with psycopg.connect(empty_pg_url, autocommit=True) as conn:
            with pytest.raises(MigrationError, match="0002_bad"):
                migrate_sync(conn)
            names = [r[0] for r in conn.execute("SELECT name FROM dataqueue_migrations")]
            bad = conn.execute("SELECT to_regclass('bad_table')").fetchone()
    finally:
        migrate.load_migrations = original  # type: ignore[assignment]
    assert names == ["0001_ok"]
    assert bad == (None,)
