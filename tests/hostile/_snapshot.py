"""The whole stored state of one test's queue, to show that a rejected call wrote nothing.

PostgreSQL: every row of every table of the test database's ``public`` schema (each row as
its jsonb text, sorted). Redis: every key of the test's prefix with its type and full content
(hash fields, list items, set members, sorted-set members with scores, string values).
Sequences are not rows: a rejected statement may have drawn an id, which is not state a
reader can see.
"""

from __future__ import annotations

from typing import Any

__all__ = ["snapshot"]


def snapshot(storage: Any) -> Any:
    if storage.backend == "postgres":
        return _pg(storage.url)
    return _redis(storage.url, storage.key_prefix)


def _pg(url: str) -> dict[str, list[str]]:
    import psycopg
    from psycopg import sql

    out: dict[str, list[str]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ]
        for table in sorted(tables):
            rows = conn.execute(
                sql.SQL("SELECT to_jsonb(t)::text FROM {} t").format(sql.Identifier(table))
            ).fetchall()
            out[table] = sorted(r[0] for r in rows)
    return out


def _redis(url: str, prefix: str) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        out: dict[str, Any] = {}
        for key in sorted(client.scan_iter(match=prefix.replace("[", "\\[") + "*", count=1000)):
            kind = client.type(key).decode()
            if kind == "hash":
                value: Any = sorted(client.hgetall(key).items())
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = sorted(client.smembers(key))
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "string":
                value = client.get(key)
            else:
                value = client.dump(key)
            out[key.decode(errors="surrogateescape")] = (kind, value)
        return out
    finally:
        client.close()
