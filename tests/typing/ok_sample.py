"""What a user writes: it must type-check under mypy --strict and pyright (never executed by
the checks; ``test_typing.py`` runs the checkers on it)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TypedDict

from dataqueue import (
    AsyncJobContext,
    AsyncJobHandle,
    DependsOn,
    JobAddedEvent,
    JobContext,
    JobFailedError,
    JobFailedEvent,
    JobHandle,
    JobRecord,
    JobSpec,
    NonRetryable,
    Retry,
    RetryPolicy,
    batch_dep_ref,
    init_async_job_queue,
    init_job_queue,
)
from dataqueue.processor import AsyncProcessor, Processor
from dataqueue.supervisor import Supervisor

q = init_job_queue("postgresql://localhost/app")


@dataclass
class Email:
    to: str
    subject: str


class Totals(TypedDict):
    rows: int


@q.task(max_attempts=5, retry_on=(TimeoutError,), dont_retry_on=[ValueError], timeout=30)
def send_email(email: Email, urgent: bool = False) -> dict[str, str]:
    if not email.to:
        raise NonRetryable("no recipient")
    return {"status": "sent"}


@q.task(job_type="reports.build", unique_while="active")
def build_report(ctx: JobContext, day: str) -> Totals:
    ctx.set_progress(50)
    parents: dict[int, object] = ctx.parent_outputs()
    if not parents:
        raise Retry(after=timedelta(minutes=5))
    return {"rows": len(parents)}


@q.task(retry=2, timeout=timedelta(seconds=10))
def fetch(url: str) -> int:
    return len(url)


@q.task(job_type="parse", retry=RetryPolicy(dont_retry_on=(ValueError,)))
def parse(text: str) -> int:
    return int(text)


@q.task
async def resize(ctx: AsyncJobContext, width: int, height: int = 100) -> int:
    await ctx.set_progress(10)
    return width * height


handle: JobHandle[dict[str, str]] = send_email.defer(Email("a@example.com", "hi"), urgent=True)
status: dict[str, str] = handle.result(timeout=30)
later = datetime.now(timezone.utc) + timedelta(hours=1)
report = build_report.configure(priority=10, run_at=later, depends_on=[handle.job_id]).defer("x")
totals: Totals = report.result(timeout=timedelta(minutes=5))
area: int = resize.defer(width=3).result()
fetched = fetch.defer("https://example.com")
parsed: JobHandle[int] = parse.configure(depends_on=fetched).defer("42")
parse.configure(depends_on=[fetched, handle.job_id], unique_for=60).defer("7")

try:
    q.wait_for_job(handle.job_id, timeout=1.5)
except JobFailedError as exc:
    print(exc.error, exc.error_history)

jobs: list[JobSpec] = [
    {"job_type": "download", "payload": {"url": "https://example.com/a.csv"}},
    {"job_type": "merge", "depends_on": DependsOn(job_ids=[batch_dep_ref(0)])},
]
ids: list[int] = q.add_jobs(jobs)
q.add_job("digest", {"user": 1}, unique_for=timedelta(hours=1), tags=["mail"])
done: list[JobRecord] = q.get_jobs_by_status("completed")
tagged = q.get_jobs_by_tags(["mail"], mode="any")


def on_added(event: JobAddedEvent) -> None:
    print(event["job_id"], event["created"])


def on_failed(event: JobFailedEvent) -> None:
    print(event["error"], event["will_retry"])


q.on("job:added", on_added)
q.on("job:failed", on_failed)

processor: Processor = q.create_processor(q.tasks, concurrency=10, dont_retry_on=KeyError)
supervisor: Supervisor = q.create_supervisor(interval=30.0)


def handler(payload: dict[str, int], ctx: JobContext) -> int:
    return payload["n"] * 2


async def async_handler(payload: object, ctx: AsyncJobContext) -> None:
    await ctx.set_output({"ok": True})


plain: Processor = q.create_processor({"double": handler, "note": async_handler})


async def main() -> None:
    aq = init_async_job_queue("redis://localhost:6379/0")

    @aq.task(name="ping")
    async def ping(host: str) -> float:
        return 1.0

    ahandle: AsyncJobHandle[float] = await ping.defer("example.com")
    rtt: float = await ahandle.result(timeout=10)
    output: object = await aq.wait_for_job(ahandle.job_id)
    aproc: AsyncProcessor = aq.create_processor(aq.tasks)
    await aproc.start()
    await aq.close()
    print(rtt, output)


asyncio.run(main())
