"""``dataqueue migrate``: create or update the storage schema."""

from __future__ import annotations

from dataqueue.cli._common import Target, connection_options, console


@connection_options(ephemeral=False)
def migrate(*, where: Target) -> None:
    """Create or update the database schema (PostgreSQL); idempotent. Redis needs none."""
    with where.queue(migrate=False) as q:
        applied = q.migrate()
    if applied:
        for name in applied:
            console.print(f"[green]applied[/green] {name}")
    else:
        console.print("schema is up to date")
