"""Fixtures for the PostgreSQL backend's own tests: a fresh migrated database per test.

Databases come from ``tests/_pg.py`` (cloned from a migrated template). ``backend`` is the
blocking ``PostgresBackend``; ``make_backend(**options)`` builds more (closed at teardown).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _pg import create_test_database, drop_test_database
from dataqueue.backends.postgres.backend_sync import PostgresBackend
from dataqueue.backends.postgres.config import PostgresSettings


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, migrated database (dropped afterwards)."""
    url = create_test_database()
    try:
        yield url
    finally:
        drop_test_database(url)


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """URL of a fresh database without the dataqueue schema."""
    url = create_test_database(migrated=False)
    try:
        yield url
    finally:
        drop_test_database(url)


BackendFactory = Callable[..., PostgresBackend]


@pytest.fixture
def make_backend(pg_url: str) -> Iterator[BackendFactory]:
    made: list[PostgresBackend] = []

    def make(url: str | None = None, **options: Any) -> PostgresBackend:
        backend = PostgresBackend(PostgresSettings.from_options(url or pg_url, **options))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def backend(make_backend: BackendFactory) -> PostgresBackend:
    return make_backend()


@pytest.fixture
def sql(pg_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A plain autocommit connection to the test database, for arranging and inspecting."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn
