"""Throwaway PostgreSQL databases for tests: one migrated template per process, cloned per test.

``create_test_database()`` returns the URL of a fresh database that already has the dataqueue
schema (cloned with ``CREATE DATABASE … TEMPLATE``, which is much faster than migrating);
``drop_test_database(url)`` removes it. The server comes from ``DATAQUEUE_TEST_PG_URL``.
"""

from __future__ import annotations

import atexit
import os
import threading
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
from dataqueue.backends.postgres.migrate import migrate_sync
from psycopg import sql

__all__ = ["ADMIN_URL", "create_test_database", "drop_test_database", "template_database"]

ADMIN_URL = os.environ.get(
    "DATAQUEUE_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)

_lock = threading.Lock()
_template: str | None = None


def _url_for(dbname: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path="/" + dbname))


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(ADMIN_URL, autocommit=True)


def _drop(name: str) -> None:
    with _admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def template_database() -> str:
    """Name of this process's migrated template database (created on first use)."""
    global _template
    with _lock:
        if _template is None:
            name = f"dq_tpl_{uuid.uuid4().hex[:12]}"
            with _admin() as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            atexit.register(_drop, name)
            with psycopg.connect(_url_for(name), autocommit=True) as conn:
                migrate_sync(conn)
            _template = name
        return _template


def create_test_database(*, migrated: bool = True) -> str:
    """Create a fresh database (migrated unless ``migrated=False``) and return its URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    template = template_database() if migrated else "template0"
    with _admin() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return _url_for(name)


def drop_test_database(url: str) -> None:
    """Drop a database made by ``create_test_database`` (closing its other sessions)."""
    name = urlsplit(url).path.lstrip("/")
    if not name.startswith("t_"):
        raise ValueError(f"refusing to drop {name!r}: not a test database")
    _drop(name)
