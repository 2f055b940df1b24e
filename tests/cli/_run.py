"""Run the command line the way a person does: ``python -m dataqueue …`` in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["clean_env", "cli", "embedded_dir"]


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
