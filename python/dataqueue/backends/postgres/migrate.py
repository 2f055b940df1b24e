"""Schema migrations: ordered ``NNNN_name.sql`` files applied once each, in a transaction.

Planning is sans-IO (``load_migrations``, ``MigrationStep``); ``migrate_sync`` and
``migrate_async`` run the same steps over a psycopg connection. Each file runs in its own
transaction that first takes a transaction-level advisory lock, so two processes migrating at
once serialise and the second one finds the work done. Applied files are recorded in
``dataqueue_migrations`` inside the target schema.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection, Connection, sql
from psycopg import errors as pg_errors

from dataqueue.errors import MigrationError

__all__ = ["Migration", "MigrationStep", "load_migrations", "migrate_async", "migrate_sync"]

_FILE_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any constant works; it only has to be the same for every process running migrations.
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"dataqueue:migrate").digest()[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: ``name`` is the file stem (e.g. ``0001_jobs``)."""

    name: str
    sql: str


def _migrations_dir() -> Path:
    # Installed package: dataqueue/migrations (a symlink in a checkout); else the repo root.
    try:
        packaged = Path(str(resources.files("dataqueue") / "migrations"))
        if packaged.is_dir():
            return packaged
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - unusual import setups
        pass
    root = Path(__file__).resolve().parents[4] / "migrations"
    if root.is_dir():
        return root
    raise MigrationError("cannot find the dataqueue migrations directory")


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """All migration files, in order."""
    folder = directory or _migrations_dir()
    files = sorted(p for p in folder.iterdir() if _FILE_RE.match(p.name))
    if not files:
        raise MigrationError(f"no migration files in {folder}")
    return [Migration(p.stem, p.read_text(encoding="utf-8")) for p in files]


@dataclass(frozen=True, slots=True)
class MigrationStep:
    """The statements that apply one migration inside its own transaction."""

    migration: Migration
    schema: str | None

    def lock(self) -> tuple[str, tuple[Any, ...]]:
        return "SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,)

    def prepare(self) -> list[sql.Composed | sql.SQL]:
        """Create the schema and the bookkeeping table (after the lock, so no race)."""
        stmts: list[sql.Composed | sql.SQL] = []
        if self.schema:
            ident = sql.Identifier(self.schema)
            stmts.append(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
            stmts.append(sql.SQL("SET LOCAL search_path TO {}").format(ident))
        stmts.append(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS dataqueue_migrations ("
                "name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
        )
        return stmts

    def is_applied(self) -> tuple[str, tuple[Any, ...]]:
        return "SELECT 1 FROM dataqueue_migrations WHERE name = %s", (self.migration.name,)

    def record(self) -> tuple[str, tuple[Any, ...]]:
        return "INSERT INTO dataqueue_migrations (name) VALUES (%s)", (self.migration.name,)


def plan(schema: str | None, migrations: list[Migration] | None = None) -> list[MigrationStep]:
    """One step per migration file; each step decides under its lock whether to run."""
    return [MigrationStep(m, schema) for m in (migrations or load_migrations())]


def _fail(step: MigrationStep, exc: Exception) -> MigrationError:
    return MigrationError(f"migration {step.migration.name} failed: {exc}")


def migrate_sync(conn: Connection[Any], schema: str | None = None) -> list[str]:
    """Apply pending migrations on ``conn``; return the names applied now."""
    applied: list[str] = []
    for step in plan(schema):
        try:
            with conn.transaction():
                conn.execute(*step.lock())
                for stmt in step.prepare():
                    conn.execute(stmt)
                if conn.execute(*step.is_applied()).fetchone():
                    continue
                conn.execute(step.migration.sql.encode())
                conn.execute(*step.record())
                applied.append(step.migration.name)
        except pg_errors.Error as exc:
            raise _fail(step, exc) from exc
    return applied


async def migrate_async(conn: AsyncConnection[Any], schema: str | None = None) -> list[str]:
    """Async twin of ``migrate_sync``."""
    applied: list[str] = []
    for step in plan(schema):
        try:
            async with conn.transaction():
                await conn.execute(*step.lock())
                for stmt in step.prepare():
                    await conn.execute(stmt)
                cur = await conn.execute(*step.is_applied())
                if await cur.fetchone():
                    continue
                await conn.execute(step.migration.sql.encode())
                await conn.execute(*step.record())
                applied.append(step.migration.name)
        except pg_errors.Error as exc:
            raise _fail(step, exc) from exc
    return applied
