"""A worker process for the multi-process tests: ``python _proc_worker.py OPTIONS``.

Each handler appends one line per event to ``--out`` (one file per process), so the test can
check what ran where: ``run <job_id> <pid>`` (mode ``record``), ``start``/``end`` lines with
wall-clock times (mode ``spans``), ``start`` then a long sleep ignoring cancellation (mode
``hang``), or ``start`` then ``cancelled`` once ``ctx.cancelled`` is set (mode ``cooperate``).
The process runs ``processor.run()`` until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from dataqueue import init_async_job_queue, init_job_queue


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key-prefix")
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--mode", choices=["record", "spans", "hang", "cooperate"], default="record"
    )
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--group-concurrency", type=int)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--use-async", action="store_true", help="AsyncJobQueue + async handlers")
    args = parser.parse_args()

    out = open(args.out, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    def write(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    def record(payload: Any, ctx: Any) -> None:
        write(f"run {ctx.job_id} {os.getpid()}")

    def spans(payload: Any, ctx: Any) -> None:
        start = time.time()
        time.sleep(payload.get("sleep", 0.05))
        write(f"span {ctx.job_id} {start} {time.time()}")

    def hang(payload: Any, ctx: Any) -> None:
        write(f"start {ctx.job_id}")
        time.sleep(120)  # ignores ctx.cancelled on purpose
        write(f"end {ctx.job_id}")

    def cooperate(payload: Any, ctx: Any) -> str:
        write(f"start {ctx.job_id}")
        seen = ctx.cancelled.wait_blocking(60)  # a graceful stop sets it
        write(f"cancelled {ctx.job_id} {seen} {ctx.cancelled.reason}")
        return "stopped early"

    async def hang_async(payload: Any, ctx: Any) -> None:
        write(f"start {ctx.job_id}")
        await asyncio.shield(asyncio.sleep(120))  # ignores cancellation until the task dies
        write(f"end {ctx.job_id}")

    handler = {"record": record, "spans": spans, "hang": hang, "cooperate": cooperate}[args.mode]
    options: dict[str, Any] = {}
    if args.key_prefix:
        options["key_prefix"] = args.key_prefix
    processor_options: dict[str, Any] = {
        "concurrency": args.concurrency,
        "batch_size": args.concurrency,
        "group_concurrency": args.group_concurrency,
        "poll_interval": 0.2,
        "lease_seconds": args.lease,
        "shutdown_grace": args.grace,
    }
    if args.use_async:
        if args.mode == "hang":
            handler = hang_async

        async def amain() -> None:
            queue = init_async_job_queue(args.url, **options)
            processor = queue.create_processor({"job": handler}, **processor_options)
            write(f"ready {os.getpid()}")
            await processor.run()
            await queue.close()

        asyncio.run(amain())
        write(f"exit {os.getpid()}")
        sys.exit(0)
    queue = init_job_queue(args.url, **options)
    processor = queue.create_processor({"job": handler}, **processor_options)
    write(f"ready {os.getpid()}")
    processor.run()
    processor.close(timeout=1)
    queue.close()
    write(f"exit {os.getpid()}")
    sys.exit(0)


if __name__ == "__main__":
    main()
