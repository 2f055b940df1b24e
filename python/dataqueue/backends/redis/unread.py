"""What a redis-py connection holds unread, known without reading from its socket.

Asking the socket costs a timer and a task switch on asyncio (a zero-timeout read) and a
syscall on the sync client. For an asyncio connection the answer is already in memory: its
stream buffers what the event loop received (bytes, or the end of file), and the hiredis
reader says whether a parsed reply waits. Anything else (the sync client, another parser, a
redis-py layout this does not know) answers "unknown", and the caller asks the socket.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["State", "may_hold_more", "state"]

State = Literal["clean", "closed", "unknown"]


def state(connection: Any) -> State:
    """``"clean"`` (connected, nothing received since its last reply), ``"closed"`` (the
    server closed it, nothing unread) or ``"unknown"`` (data waiting, not connected, or a
    client this cannot read)."""
    stream: Any = getattr(connection, "_reader", None)
    received = getattr(stream, "_buffer", None)
    hiredis_reader = getattr(getattr(connection, "_parser", None), "_reader", None)
    has_data = getattr(hiredis_reader, "has_data", None)
    if received is None or has_data is None or not connection.is_connected:
        return "unknown"
    if received or has_data():
        return "unknown"
    return "closed" if stream.at_eof() else "clean"


def may_hold_more(pubsub: Any) -> bool:
    """Whether a pub/sub subscription may have another message to read at once: False only
    when its connection has received nothing since the message just parsed (a closed one
    too: its next wait reconnects or reports it)."""
    connection = getattr(pubsub, "connection", None)
    return connection is None or state(connection) == "unknown"
