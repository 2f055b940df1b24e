"""The asyncio client's connection pool: redis-py's blocking pool (a call beyond
``max_connections`` waits for a free connection), with its own check of the connection it
hands out.

A pooled connection may have been closed by the server (a restart, ``CLIENT KILL``, an idle
timeout) or hold bytes nobody read. redis-py checks for both on checkout, but before redis-py 6
with a zero-timeout read (a timer and a task switch per command, about a third of a single
``add_job``'s client CPU), and from 8 not at all for a closed one while its maintenance
notifications are on. Both facts are already known without reading: the stream holds what the
event loop received (bytes, or the end of file), and the hiredis reader says whether a parsed
reply waits. A connection showing neither goes straight out; one the server closed is
reconnected first; anything else gets redis-py's own check.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool

__all__ = ["AsyncBlockingPool"]


class AsyncBlockingPool(BlockingConnectionPool):
    async def ensure_connection(self, connection: Any) -> None:
        state = _state(connection)
        if state == "clean":
            return
        if state == "closed":
            await connection.disconnect()  # super() then connects it again
        await super().ensure_connection(connection)


def _state(connection: Any) -> str:
    """``"clean"`` (connected, nothing received since its last reply), ``"closed"`` (the
    server closed it, nothing unread) or ``"unknown"`` (data waiting, not connected, or a
    parser or redis-py layout this cannot read)."""
    stream: Any = getattr(connection, "_reader", None)
    received = getattr(stream, "_buffer", None)
    hiredis_reader = getattr(getattr(connection, "_parser", None), "_reader", None)
    has_data = getattr(hiredis_reader, "has_data", None)
    if received is None or has_data is None or not connection.is_connected:
        return "unknown"
    if received or has_data():
        return "unknown"
    return "closed" if stream.at_eof() else "clean"
