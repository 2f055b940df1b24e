"""Worker processes started by tests: stopped with Ctrl-C the way an operator stops them, and
never left running when a test fails."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Yield ``proc``; kill it on the way out if it is still running (a failed test)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def ctrl_c(proc: subprocess.Popen[str], idle: float) -> tuple[str, str]:
    """After ``idle`` seconds (the worker idle, waiting for work: the state a Ctrl-C usually
    finds), send SIGINT and return its stdout and stderr once it exits (a minute at most)."""
    time.sleep(idle)
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=60)
