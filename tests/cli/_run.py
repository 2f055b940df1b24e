"""Run the command line the way a person does: ``python -m dataqueue …`` in a subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["clean_env", "cli", "demo_worker", "embedded_dir", "spawn"]


def clean_env(**extra: str) -> dict[str, str]:
    """The test environment without dataqueue settings that would change what a command uses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAQUEUE_")}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb")
    env.update(extra)
    return env


def cli(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dataqueue *args`` and return the finished process (never raises on a
    non-zero exit: tests assert on it)."""
    return subprocess.run(
        [sys.executable, "-m", "dataqueue", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else clean_env(),
        check=False,
    )


def spawn(*args: str) -> subprocess.Popen[str]:
    """Start ``python *args`` in the background, its output piped (text)."""
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )


@contextmanager
def demo_worker(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``dataqueue worker`` running the demo handlers (polling every 0.2 s) with ``args``;
    stopped with SIGTERM afterwards, which it must survive cleanly."""
    handlers = "dataqueue.cli.demo_handlers:HANDLERS"
    proc = spawn("-m", "dataqueue", "worker", handlers, "--poll-interval", "0.2", *args)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "worker stopped" in out
    assert "Traceback" not in err


@contextmanager
def embedded_dir() -> Iterator[Path]:
    """A fresh data folder for the embedded server, stopped and removed afterwards.

    Made directly under the temp dir: as root the server runs as an unprivileged user, who must
    be able to reach the folder (pytest's own tmp_path sits under a root-only folder)."""
    path = Path(tempfile.mkdtemp(prefix="dq-embedded-"))
    try:
        yield path
    finally:
        from dataqueue.embedded import EmbeddedPostgres

        try:
            EmbeddedPostgres(path).stop()
        finally:
            shutil.rmtree(path, ignore_errors=True)
