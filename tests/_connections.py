"""Named server connections, so that a test can drop exactly a worker's connections the way a
network failure or an operator does (``pg_terminate_backend`` / ``CLIENT KILL``)."""

from __future__ import annotations

import contextlib


def named(backend: str, url: str, name: str) -> str:
    """``url`` with every connection made from it named ``name`` (PostgreSQL
    ``application_name``, Redis ``client_name``)."""
    key = "application_name" if backend == "postgres" else "client_name"
    return f"{url}{'&' if '?' in url else '?'}{key}={name}"


def kill_named(backend: str, url: str, name: str) -> int:
    """Drop every server connection named ``name``, through an admin connection to ``url``;
    returns how many."""
    if backend == "postgres":
        import psycopg

        with psycopg.connect(url, autocommit=True, connect_timeout=2) as admin:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (name,),
            ).fetchall()
        return len(rows)
    import redis

    admin = redis.Redis.from_url(url, socket_timeout=2)
    try:
        ids = [c["id"] for c in admin.client_list() if c.get("name") == name]
        for client_id in ids:
            with contextlib.suppress(redis.exceptions.ResponseError):  # gone meanwhile
                admin.execute_command("CLIENT", "KILL", "ID", client_id)
        return len(ids)
    finally:
        admin.close()
