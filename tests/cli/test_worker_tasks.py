"""``dataqueue worker myapp.tasks``: a module path alone runs every ``@q.task`` of that module
(their job types defaulting to the dotted function names), on Postgres and Redis; the code
that deferred the jobs gets their results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _processes import ctrl_c, reaped
from dataqueue import JobFailedError

from ._run import clean_env
from .conftest import CliStorage

TASKS = """
import os
from dataclasses import dataclass

from dataqueue import JobContext, NonRetryable, init_job_queue

q = init_job_queue(os.environ["DQ_APP_URL"], **({"key_prefix": os.environ["DQ_APP_PREFIX"]}
                                               if os.environ["DQ_APP_PREFIX"] else {}))


@dataclass
class Point:
    x: int
    y: int


@q.task
def add(a: int, b: int = 1) -> int:
    return a + b


@q.task(name="geo.mirror")
async def mirror(ctx: JobContext, p: Point) -> Point:
    return Point(p.y, p.x)


@q.task(max_attempts=5)
def refuse() -> None:
    raise NonRetryable("never")
"""


def test_worker_runs_every_task_of_a_module(
    cli_storage: CliStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text(TASKS)
    env = {"DQ_APP_URL": cli_storage.url, "DQ_APP_PREFIX": cli_storage.key_prefix or ""}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("myapp", "myapp.tasks"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    from myapp import tasks  # type: ignore[import-not-found]

    handles: list[Any] = []
    try:
        assert sorted(tasks.q.tasks) == ["geo.mirror", "myapp.tasks.add", "myapp.tasks.refuse"]
        handles = [tasks.add.defer(2), tasks.mirror.defer(tasks.Point(1, 2)), tasks.refuse.defer()]
        worker = subprocess.Popen(
            [sys.executable, "-m", "dataqueue", "worker", "myapp.tasks", "--poll-interval", "0.2",
             *cli_storage.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            env=clean_env(**env),
        )  # fmt: skip
        with reaped(worker):
            assert handles[0].result(timeout=60) == 3
            assert handles[1].result(timeout=60) == tasks.Point(2, 1)
            with pytest.raises(JobFailedError, match="never"):
                handles[2].result(timeout=60)
            out, err = ctrl_c(worker, idle=0.2)
        assert worker.returncode == 0, out + err
        assert "Traceback" not in err, err
        assert tasks.q.get_job(handles[2].job_id).attempts == 1
    finally:
        tasks.q.close()
