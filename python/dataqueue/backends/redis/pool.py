"""The asyncio client's connection pool: redis-py's blocking pool (a call beyond
``max_connections`` waits for a free connection), with its own check of the connection it
hands out.

A pooled connection may have been closed by the server (a restart, ``CLIENT KILL``, an idle
timeout) or hold bytes nobody read. redis-py checks for both on checkout, but before redis-py 6
with a zero-timeout read (a timer and a task switch per command, about a third of a single
``add_job``'s client CPU), and from 8 not at all for a closed one while its maintenance
notifications are on. Both facts are known without reading (``unread``): a connection showing
neither goes straight out; one the server closed is reconnected first; anything else gets
redis-py's own check.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool

from dataqueue.backends.redis.unread import state

__all__ = ["AsyncBlockingPool"]


class AsyncBlockingPool(BlockingConnectionPool):
    async def ensure_connection(self, connection: Any) -> None:
        found = state(connection)
        if found == "clean":
            return
        if found == "closed":
            await connection.disconnect()  # super() then connects it again
        await super().ensure_connection(connection)
