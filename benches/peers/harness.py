"""One repetition of one system, in a process of its own (``run.py`` starts it): prints a JSON
line of the system's four measurements.

    python benches/peers/harness.py --system NAME --url URL [--admin-url URL] [--jobs N] ...

Each phase starts on fresh storage (a new ``bench`` database, or an empty Redis):

1. single enqueue: ``--single`` sequential single-job calls, no worker running -> jobs/s;
2. bulk enqueue: ``--jobs`` jobs in the library's bulk API -> jobs/s; then
   drain: one worker process (the library's own worker command) at concurrency 10 runs them
   -> jobs / (last handler end - first handler start);
   (a system that cannot finish 1. or the drain within ``--budget`` seconds is measured over
   the jobs done by then, and the result says so under ``partial``);
3. pickup latency: the worker idle and warmed up, ``--samples`` jobs enqueued one by one at
   ``--rate`` jobs/s, each carrying its enqueue time ``t`` -> p50 / p99 of handler start - t.

Jobs are counted and timed from the lines the handlers append to a record file
(``workers/record.py``), the same way for every system.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

from adapters import SYSTEMS, Adapter
from adapters.base import WORKERS_DIR
from servers import fresh_postgres, fresh_redis

#: Seconds a worker may take from its start to its first job (imports, connecting).
STARTUP_TIMEOUT = 90.0
#: Warm-up jobs before the latency samples (after the first one ran).
WARMUP = 20


class WorkerFailed(RuntimeError):
    pass


class Record:
    """The lines the handlers appended to the record file, read as they come."""

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, "wb"):
            pass
        self._fh = open(path, "rb")  # noqa: SIM115 - read incrementally until close()
        self._rest = b""
        self.lines: list[tuple[float, float, float]] = []

    def poll(self) -> int:
        data = self._fh.read()
        if data:
            *complete, self._rest = (self._rest + data).split(b"\n")
            for line in complete:
                t, start, end = line.split()
                self.lines.append((float(t), float(start), float(end)))
        return len(self.lines)

    async def wait_for(self, n: int, timeout: float, worker: Worker) -> None:
        deadline = time.monotonic() + timeout
        while self.poll() < n:
            worker.check()
            if time.monotonic() > deadline:
                raise WorkerFailed(
                    f"{len(self.lines)} of {n} jobs ran within {timeout:.0f} s{worker.tail()}"
                )
            await asyncio.sleep(0.02)

    async def wait_drain(self, n: int, budget: float, worker: Worker) -> int:
        """Until ``n`` jobs ran, or ``budget`` seconds after the first one started (a system
        too slow to finish in time is measured over the jobs it ran); returns how many ran."""
        await self.wait_for(1, STARTUP_TIMEOUT, worker)
        stop_at = self.lines[0][1] + budget
        while self.poll() < n and time.time() < stop_at:
            worker.check()
            await asyncio.sleep(0.02)
        return len(self.lines)

    def close(self) -> None:
        self._fh.close()


class Worker:
    """The system's worker command, in a process group of its own (stopped as a group)."""

    def __init__(self, adapter: Adapter, record: str, logdir: str) -> None:
        self.log = os.path.join(logdir, f"{adapter.name}-worker-{time.time_ns()}.log")
        env = dict(os.environ)
        env["BENCH_URL"] = adapter.url
        env["BENCH_RECORD"] = record
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (WORKERS_DIR, env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        self.cmd = adapter.worker_command()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=WORKERS_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def tail(self) -> str:
        try:
            with open(self.log, errors="replace") as fh:
                text = fh.read()[-1500:]
        except OSError:
            return ""
        return f"\n--- {' '.join(self.cmd)}\n{text}" if text else ""

    def check(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise WorkerFailed(f"the worker exited with status {code}{self.tail()}")

    def stop(self) -> None:
        """SIGTERM to the group (each library's graceful stop), SIGKILL after 10 s, and
        SIGKILL to whatever of the group is left (pool children)."""
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: str) -> None:
        self.args = args
        self.workdir = workdir
        self.cls = SYSTEMS[args.system]
        self.record_path = os.path.join(workdir, f"{args.system}.record")
        # Task modules that configure their broker at import (Celery, Dramatiq) read it.
        os.environ["BENCH_URL"] = args.url

    def fresh(self) -> Adapter:
        if self.cls.family == "postgres":
            fresh_postgres(self.args.admin_url)
        else:
            fresh_redis(self.args.url)
        return self.cls(self.args.url)

    async def single(self) -> dict[str, float]:
        adapter = self.fresh()
        await adapter.open()
        try:
            started = time.perf_counter()
            stop_at = started + self.args.budget
            done = 0
            while done < self.args.single:
                await adapter.enqueue(time.time())
                done += 1
                if time.perf_counter() > stop_at:
                    self.partial["single"] = done
                    break
            return {"single": done / (time.perf_counter() - started)}
        finally:
            await adapter.close()

    async def bulk_and_drain(self) -> dict[str, float]:
        adapter = self.fresh()
        await adapter.open()
        out: dict[str, float] = {}
        try:
            n = self.args.jobs
            ts = [time.time()] * n
            started = time.perf_counter()
            await adapter.enqueue_bulk(ts)
            out["bulk"] = n / (time.perf_counter() - started)
            record = Record(self.record_path)
            worker = Worker(adapter, self.record_path, self.workdir)
            try:
                ran = await record.wait_drain(n, self.args.budget, worker)
            finally:
                worker.stop()
                record.close()
            if ran < n:
                self.partial["drain"] = ran
            lines = record.lines[:ran]
            first = min(start for _, start, _ in lines)
            last = max(end for _, _, end in lines)
            out["drain"] = ran / (last - first)
            return out
        finally:
            await adapter.close()

    async def latency(self) -> dict[str, float]:
        adapter = self.fresh()
        await adapter.open()
        try:
            record = Record(self.record_path)
            worker = Worker(adapter, self.record_path, self.workdir)
            try:
                return await self._latency(adapter, record, worker)
            finally:
                worker.stop()
                record.close()
        finally:
            await adapter.close()

    async def _latency(self, adapter: Adapter, record: Record, worker: Worker) -> dict[str, float]:
        # Until the worker is up: a job every 0.2 s until one has run.
        sent, last_sent = 0, 0.0
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while record.poll() == 0:
            worker.check()
            if time.monotonic() > deadline:
                raise WorkerFailed(f"no job ran within {STARTUP_TIMEOUT:.0f} s{worker.tail()}")
            if sent == 0 or time.monotonic() - last_sent > 0.2:
                await adapter.enqueue(time.time())
                last_sent = time.monotonic()
                sent += 1
            await asyncio.sleep(0.01)
        interval = 1.0 / self.args.rate
        for _ in range(WARMUP):
            await adapter.enqueue(time.time())
            sent += 1
            await asyncio.sleep(interval)
        await record.wait_for(sent, 60, worker)
        await asyncio.sleep(0.5)  # back to its idle wait
        base = record.poll()
        n = self.args.samples
        next_at = time.perf_counter()
        for _ in range(n):
            await adapter.enqueue(time.time())
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await record.wait_for(base + n, 60 + n / 10, worker)
        lat = sorted((start - t) * 1000.0 for t, start, _ in record.lines[base : base + n])
        return {"p50": statistics.median(lat), "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))]}

    async def run(self) -> dict[str, Any]:
        result: dict[str, Any] = {"system": self.args.system, "errors": {}, "partial": {}}
        self.partial = result["partial"]
        result["phase_seconds"] = {}
        for phase in (self.single, self.bulk_and_drain, self.latency):
            started = time.monotonic()
            try:
                result.update(await phase())
            except Exception as exc:
                name = phase.__name__
                result["errors"][name] = f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, WorkerFailed):
                    result["errors"][name] += "\n" + traceback.format_exc(limit=6)
            result["phase_seconds"][phase.__name__] = round(time.monotonic() - started, 2)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True, choices=sorted(SYSTEMS))
    parser.add_argument("--url", required=True, help="the storage: Redis URL or PG bench db")
    parser.add_argument("--admin-url", help="PostgreSQL: the maintenance database's URL")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--single", type=int, default=2_000)
    parser.add_argument("--samples", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per phase")
    parser.add_argument("--workdir", help="where the record file and worker logs go")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="dq-peers-")
    result = asyncio.run(Bench(args, workdir).run())
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
