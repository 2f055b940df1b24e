"""Connection settings (URL, database_config, SSL, search_path, pools) and error translation."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dataqueue.backends.postgres.backend_sync import PostgresBackend
from dataqueue.backends.postgres.config import PostgresSettings
from dataqueue.errors import BackendError, ConfigurationError, InvalidJobError
from dataqueue.options import NewJob, normalize_job
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from .helpers import add, claim_one

PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def _params(settings: PostgresSettings) -> dict[str, Any]:
    return conninfo_to_dict(settings.conninfo)


def test_url_search_path_and_no_verify() -> None:
    s = PostgresSettings.from_options(
        "postgresql://u:p@db.example:6543/app?search_path=my%20schema,public&sslmode=no-verify"
        "&application_name=x"
    )
    params = _params(s)
    assert params["host"] == "db.example" and params["port"] == "6543"
    assert params["dbname"] == "app" and params["application_name"] == "x"
    assert params["sslmode"] == "require"  # encrypted, not verified
    assert "search_path" not in s.conninfo.split("options")[0]
    assert params["options"] == '-c search_path="my\\ schema","public"'
    assert PostgresSettings.from_options("postgres://h/db").conninfo


def test_database_config_keys_and_errors() -> None:
    s = PostgresSettings.from_options(
        database_config={"host": "h", "port": 5433, "database": "d", "user": "u",
                         "password": "p", "min_size": 2, "max_size": 4}
    )  # fmt: skip
    assert _params(s) == {"host": "h", "port": "5433", "dbname": "d", "user": "u",
                          "password": "p"}  # fmt: skip
    assert (s.min_size, s.max_size) == (2, 4)
    with pytest.raises(ConfigurationError, match="bogus"):
        PostgresSettings.from_options(database_config={"host": "h", "bogus": 1})
    with pytest.raises(ConfigurationError, match="pool"):
        PostgresSettings.from_options()
    with pytest.raises(ConfigurationError):
        PostgresSettings.from_options("mysql://h/db")
    with pytest.raises(ConfigurationError, match="min_size"):
        PostgresSettings.from_options(database_config={"host": "h", "min_size": 5, "max_size": 2})
    with pytest.raises(ConfigurationError, match="ssl"):
        PostgresSettings.from_options(database_config={"host": "h", "ssl": {"nope": 1}})


def test_ssl_inline_pem_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "client.key"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv("PGSSLCERT", f"file://{key_file}")
    s = PostgresSettings.from_options(
        database_config={"url": "postgresql://h/db",
                         "ssl": {"ca": PEM, "key": f"file://{key_file}"}}
    )  # fmt: skip
    params = _params(s)
    assert params["sslmode"] == "verify-full"
    ca = Path(params["sslrootcert"])
    assert ca.read_text() == PEM and stat.S_IMODE(ca.stat().st_mode) == 0o600
    assert params["sslkey"] == str(key_file)
    assert params["sslcert"] == str(key_file)  # from PGSSLCERT
    relaxed = PostgresSettings.from_options(
        "postgresql://h/db", database_config={"ssl": {"ca": PEM, "reject_unauthorized": False}}
    )
    assert _params(relaxed)["sslmode"] == "require"
    with pytest.raises(ConfigurationError, match="no such file"):
        PostgresSettings.from_options(
            "postgresql://h/db", database_config={"ssl": {"ca": "file:///nonexistent.pem"}}
        )


def test_search_path_from_url_is_applied(empty_pg_url: str) -> None:
    with psycopg.connect(empty_pg_url, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "Queue Space"')
    url = empty_pg_url + "?search_path=Queue%20Space"
    backend = PostgresBackend(PostgresSettings.from_options(url))
    try:
        assert backend.migrate()  # unqualified names land in the search_path's schema
        job_id = add(backend)
        assert claim_one(backend).id == job_id
    finally:
        backend.close()
    with psycopg.connect(empty_pg_url) as conn:
        row = conn.execute("SELECT to_regclass('\"Queue Space\".job_queue')").fetchone()
    assert row is not None and row[0] is not None


def test_database_config_search_path_is_applied(empty_pg_url: str) -> None:
    """``database_config={"search_path": …}`` through the public factory, end to end."""
    from dataqueue import init_job_queue

    with psycopg.connect(empty_pg_url, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "app; space"')
    p = conninfo_to_dict(empty_pg_url)
    config = {"host": p.get("host"), "port": int(p.get("port") or 5432), "user": p.get("user"),
              "password": p.get("password"), "database": p["dbname"],
              "search_path": "app; space"}  # fmt: skip
    with init_job_queue(backend="postgres", database_config=config) as q:
        assert q.migrate()
        job_id = q.add_job("t", {"v": 1})
        assert q.get_job(job_id) is not None
    with psycopg.connect(empty_pg_url) as conn:
        row = conn.execute("SELECT to_regclass('\"app; space\".job_queue')").fetchone()
        public = conn.execute("SELECT to_regclass('public.job_queue')").fetchone()
    assert row is not None and row[0] is not None
    assert public == (None,)


def test_a_callers_pool_with_dict_rows_works(pg_url: str) -> None:
    from psycopg.rows import dict_row

    with ConnectionPool(pg_url, kwargs={"row_factory": dict_row}, min_size=1) as pool:
        backend = PostgresBackend(PostgresSettings.from_options(pool=pool))
        job_id = add(backend, tags=["a"])
        job = claim_one(backend)
        assert job.id == job_id and job.tags == ("a",)
        assert backend.complete_job(job_id, "w", job.lock_version, [1, 2])
        assert [e.event_type for e in backend.get_job_events(job_id)][-1] == "completed"


def test_own_pool_opens_lazily_and_closes(pg_url: str) -> None:
    backend = PostgresBackend(PostgresSettings.from_options(pg_url))
    assert backend.pool.closed  # nothing opened by the constructor
    add(backend)
    assert not backend.pool.closed
    backend.close()
    assert backend.pool.closed
    with pytest.raises(BackendError):
        add(backend)


def test_bad_values_become_invalid_job_errors(backend: PostgresBackend) -> None:
    good = normalize_job({"job_type": "t"})
    too_long = NewJob(**{**{f: getattr(good, f) for f in good.__dataclass_fields__},
                         "job_type": "x" * 300})  # fmt: skip
    with pytest.raises(InvalidJobError):
        backend.add_jobs([too_long])
    with pytest.raises(InvalidJobError):
        backend.add_jobs([normalize_job({"job_type": "t", "payload": "nul\u0000"})])
    assert backend.get_all_jobs(10, 0) == []


def test_pem_temp_files_are_private() -> None:
    s = PostgresSettings.from_options("postgresql://h/db", database_config={"ssl": {"ca": PEM}})
    path = _params(s)["sslrootcert"]
    assert os.stat(path).st_mode & 0o077 == 0
