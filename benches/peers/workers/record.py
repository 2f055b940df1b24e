"""What every system's no-op handler calls first: one line per job to ``$BENCH_RECORD``.

A line is ``<enqueue time t> <handler start> <handler end>`` (``time.time()``). One
``O_APPEND`` write per job is atomic between the threads and processes of a worker (Celery's
threads, RQ's forked work horses), so the harness counts and times jobs the same way for every
system, without any library's own events.
"""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_fd: int | None = None


def _open() -> int:
    global _fd
    with _lock:
        if _fd is None:
            _fd = os.open(os.environ["BENCH_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        return _fd


def record(t: float) -> None:
    started = time.time()
    fd = _fd if _fd is not None else _open()
    os.write(fd, f"{t!r} {started!r} {time.time()!r}\n".encode())
