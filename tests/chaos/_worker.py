"""A chaos-suite process: a real worker (``worker``) or a client adding one big batch
(``client``). Run as ``python _worker.py '<json config>'``; the orchestrator kills it at will.

The worker's handler writes an append-only ledger line when a run starts and when it ends
(job id, attempt, lock version, pid, wall-clock time): the suite checks its invariants against
this record, which is independent of the store.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

JOB_TYPE = "chaos"


def _ledger(directory: str) -> Any:
    fd = os.open(
        os.path.join(directory, f"{os.getpid()}.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND
    )

    def write(record: dict[str, Any]) -> None:
        # One write(2) per line: a SIGKILL never leaves half a line behind.
        os.write(fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    return write


def _handler(write: Any) -> Any:
    pid = os.getpid()

    async def run(payload: dict[str, Any], ctx: Any) -> Any:
        job = ctx.job
        write({"e": "s", "j": job.id, "a": ctx.attempt, "v": job.lock_version, "p": pid,
               "t": time.time()})  # fmt: skip
        ok = False
        try:
            kind = payload["k"]
            if kind in ("sleep", "long"):
                await asyncio.sleep(payload["ms"] / 1000.0)
                await ctx.set_output({"p": pid, "v": ctx.job.lock_version})
                ok = True
                return None
            if kind == "flaky" and ctx.attempt <= payload["fails"]:
                raise RuntimeError(f"flaky: attempt {ctx.attempt}")
            if kind == "fail":
                raise RuntimeError("always fails")
            ok = True
            return {"p": pid, "v": ctx.job.lock_version}
        finally:
            write({"e": "ok" if ok else "err", "j": job.id, "v": ctx.job.lock_version, "p": pid,
                   "t": time.time()})  # fmt: skip

    return run


async def _work(cfg: dict[str, Any]) -> None:
    from dataqueue import init_async_job_queue

    q = init_async_job_queue(cfg["url"], **cfg["opts"])
    proc = q.create_processor(
        {JOB_TYPE: _handler(_ledger(cfg["ledger"]))},
        worker_id=f"chaos-{cfg['index']}-{os.getpid()}",
        concurrency=cfg["concurrency"],
        batch_size=cfg["concurrency"],
        lease_seconds=cfg["lease"],
        poll_interval=0.5,
        shutdown_grace=2,
    )
    try:
        await proc.run()
    finally:
        await q.close()


def _client(cfg: dict[str, Any]) -> None:
    from dataqueue import DependsOn, batch_dep_ref, init_job_queue

    q = init_job_queue(cfg["url"], **cfg["opts"])
    later = datetime.now(timezone.utc) + timedelta(days=365)
    batch = cfg["batch"]
    jobs = []
    for i in range(cfg["size"]):
        job: dict[str, Any] = {
            "job_type": JOB_TYPE,
            "payload": {"k": "noop", "batch": batch},
            "run_at": later,
            "tags": [batch],
        }
        if i % 2:  # chains of two: the batch carries dependencies as well
            job["depends_on"] = DependsOn(job_ids=[batch_dep_ref(i - 1)])
        jobs.append(job)
    print("ready", flush=True)
    q.add_jobs(jobs)
    print("done", flush=True)
    q.close()


if __name__ == "__main__":
    config = json.loads(sys.argv[1])
    if config["mode"] == "client":
        _client(config)
    else:
        asyncio.run(_work(config))
