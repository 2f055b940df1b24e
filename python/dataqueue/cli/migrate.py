"""``dataqueue migrate``: create or update the storage schema."""

from __future__ import annotations

from dataqueue.cli._common import (
    DataDirOpt,
    KeyPrefixOpt,
    SchemaOpt,
    UrlOpt,
    console,
    target,
)


def migrate(
    url: UrlOpt = None,
    key_prefix: KeyPrefixOpt = None,
    schema: SchemaOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create or update the database schema (PostgreSQL); idempotent. Redis needs none."""
    with target(url, key_prefix, schema, data_dir).queue(migrate=False) as q:
        applied = q.migrate()
    if applied:
        for name in applied:
            console.print(f"[green]applied[/green] {name}")
    else:
        console.print("schema is up to date")
