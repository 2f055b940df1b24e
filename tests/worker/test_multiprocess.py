"""Several worker processes on one queue: exactly-once, SIGTERM safety, global group caps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _variants import VARIANTS

from ._helpers import wait_until

WORKER = Path(__file__).with_name("_proc_worker.py")
SYNC_VARIANTS = sorted({(backend, "sync") for backend, _ in VARIANTS})
pytestmark = pytest.mark.parametrize("variant", SYNC_VARIANTS, ids=[b for b, _ in SYNC_VARIANTS])


class Workers:
    """Starts worker processes for the test's storage; kills leftovers at teardown."""

    def __init__(self, storage: Any, tmp: Path) -> None:
        self.storage = storage
        self.tmp = tmp
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(
        self, mode: str = "record", wait: bool = True, **options: Any
    ) -> tuple[subprocess.Popen[bytes], Path]:
        out = self.tmp / f"worker-{len(self.procs)}.log"
        cmd = [
            sys.executable,
            str(WORKER),
            "--url",
            self.storage.url,
            "--out",
            str(out),
            "--mode",
            mode,
        ]
        if self.storage.key_prefix:
            cmd += ["--key-prefix", self.storage.key_prefix]
        for key, value in options.items():
            cmd.append(f"--{key.replace('_', '-')}")
            if value != "":
                cmd.append(str(value))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        proc = subprocess.Popen(cmd, env=env)
        self.procs.append((proc, out))
        if wait:
            self.wait_ready()
        return proc, out

    def wait_ready(self) -> None:
        for _, out in self.procs:
            wait_until(lambda out=out: out.exists() and "ready" in out.read_text(), timeout=60)

    def lines(self, prefix: str) -> list[list[str]]:
        rows = []
        for _, out in self.procs:
            if out.exists():
                rows += [ln.split() for ln in out.read_text().splitlines() if ln.startswith(prefix)]
        return rows

    def stop_all(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def workers(storage: Any, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(storage, tmp_path)
    yield w
    for proc, _ in w.procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def _count(q: Any, status: str) -> int:
    return len(q.get_jobs_by_status(status, limit=10_000))


def test_four_processes_run_each_job_exactly_once(q: Any, workers: Workers) -> None:
    total = 2000
    for _ in range(4):
        workers.start(concurrency=10, wait=False)
    workers.wait_ready()
    for start in range(0, total, 500):
        q.add_jobs([{"job_type": "job", "payload": {"i": i}} for i in range(start, start + 500)])
    wait_until(lambda: _count(q, "completed") == total, timeout=120, interval=0.5)
    workers.stop_all()
    runs = workers.lines("run")
    counts = Counter(int(r[1]) for r in runs)
    assert len(counts) == total
    assert set(counts.values()) == {1}
    assert len({r[2] for r in runs}) > 1  # the work really was shared


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_sigterm_leaves_no_job_lost(q: Any, workers: Workers, flavour: str) -> None:
    ids = q.add_jobs([{"job_type": "job", "payload": {}} for _ in range(3)])
    extra = {"use_async": ""} if flavour == "async" else {}
    hung, _ = workers.start(mode="hang", concurrency=3, lease=2, grace=0.5, **extra)
    wait_until(lambda: len(workers.lines("start")) == 3, timeout=30)
    hung.send_signal(signal.SIGTERM)
    assert hung.wait(20) == 0
    assert all(q.get_job(i).status.value == "processing" for i in ids)
    time.sleep(2.2)  # the lease (2 s) runs out: no heartbeat renews it any more
    assert q.reclaim_stuck_jobs() == 3
    workers.start(mode="record", concurrency=3)
    wait_until(lambda: _count(q, "completed") == 3, timeout=30, interval=0.2)
    assert sorted(int(r[1]) for r in workers.lines("run")) == sorted(ids)
    assert not workers.lines("end")  # the hung handlers were really gone


def test_sigterm_signals_running_handlers_through_ctx_cancelled(q: Any, workers: Workers) -> None:
    ids = q.add_jobs([{"job_type": "job", "payload": {}} for _ in range(2)])
    proc, _ = workers.start(mode="cooperate", concurrency=2, grace=10)
    wait_until(lambda: len(workers.lines("start")) == 2, timeout=30)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert sorted(workers.lines("cancelled")) == sorted(
        ["cancelled", str(i), "True", "shutdown"] for i in ids
    )
    # handlers that return within the grace period finish their jobs normally
    assert [q.get_job(i).output for i in ids] == ["stopped early"] * 2


def test_group_concurrency_holds_across_processes(q: Any, workers: Workers) -> None:
    cap = 2
    q.add_jobs(
        [
            {"job_type": "job", "payload": {"sleep": 0.08}, "group": {"id": "tenant"}}
            for _ in range(24)
        ]
    )
    for _ in range(3):
        workers.start(mode="spans", concurrency=4, group_concurrency=cap)
    wait_until(lambda: _count(q, "completed") == 24, timeout=60, interval=0.3)
    workers.stop_all()
    events = []
    for _, _, start, end in workers.lines("span"):
        events += [(float(start), 1), (float(end), -1)]
    running = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        running += delta
        peak = max(peak, running)
    assert 1 <= peak <= cap


def test_cron_occurrence_enqueued_once_across_processes(q: Any, workers: Workers) -> None:
    for _ in range(4):
        workers.start(concurrency=2, wait=False)
    workers.wait_ready()
    started = time.monotonic()
    cron_id = q.add_cron_job("every-second", "* * * * * *", "job", {}, allow_overlap=True)
    time.sleep(3.5)  # every process ticks its cron check every 0.2 s
    q.pause_cron_job(cron_id)
    elapsed = time.monotonic() - started
    wait_until(lambda: _count(q, "pending") + _count(q, "processing") == 0, timeout=30)
    workers.stop_all()
    jobs = q.get_all_jobs(limit=1000)
    # one job per occurrence (a due second), not one per process and occurrence
    assert 2 <= len(jobs) <= int(elapsed) + 1
    counts = Counter(int(r[1]) for r in workers.lines("run"))
    assert sorted(counts) == sorted(j.id for j in jobs)
    assert set(counts.values()) == {1}
