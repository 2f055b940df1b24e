"""``dataqueue demo``: a small data pipeline, enqueued in one call and run in-process with a live
view of every job.

The story, all in ONE ``add_jobs`` call (``batch_dep_ref`` links entries of the same call):

- ingest three files (one fails once with a transient error, then succeeds on its retry after a
  short backoff);
- transform each file once its ingest completed (dependency by id);
- aggregate once all three transforms completed;
- finalize once no other job of the pipeline is active (dependency on tags: a tag drain);
- upload the report to a partner that is down (``max_attempts=1``: a terminal failure), so the
  notification that depends on it is cancelled by the dependency cascade.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from dataqueue.cli._common import (
    Target,
    connection_options,
    console,
    describe,
    fail,
)
from dataqueue.cli.render import progress_text, status_text
from dataqueue.options import DependsOn, JobOptions, batch_dep_ref
from dataqueue.records import JobEvent, JobEventType, JobRecord, JobStatus

__all__ = ["build_pipeline", "demo"]

FILES = ("orders.csv", "customers.csv", "inventory.csv")
FLAKY_FILE = "inventory.csv"


def build_pipeline(run_tag: str, speed: float = 1.0) -> list[JobOptions]:
    """The demo's jobs, in enqueue order (placeholders refer to positions in this list)."""
    pipeline = [run_tag, "pipeline"]
    jobs: list[JobOptions] = []
    for name in FILES:
        flaky = name == FLAKY_FILE
        jobs.append(
            JobOptions(
                "demo.ingest",
                {"file": name, "speed": speed, "fail_first_attempt": flaky},
                tags=[*pipeline, "ingest"],
                max_attempts=3,
                # Retry after 1 s doubled per attempt, capped at 2 s, with jitter.
                retry_delay=1,
                retry_backoff=True,
                retry_delay_max=2,
            )
        )
    for i, name in enumerate(FILES):
        jobs.append(
            JobOptions(
                "demo.transform",
                {"file": name, "speed": speed},
                tags=[*pipeline, "transform"],
                depends_on=DependsOn(job_ids=[batch_dep_ref(i)]),
            )
        )
    transforms = [batch_dep_ref(len(FILES) + i) for i in range(len(FILES))]
    aggregate_index = len(jobs)
    jobs.append(
        JobOptions(
            "demo.aggregate",
            {"files": list(FILES), "speed": speed},
            tags=[*pipeline, "aggregate"],
            depends_on=DependsOn(job_ids=transforms),
        )
    )
    # Waits until no other job tagged with both run tag and "pipeline" is active (tag drain).
    jobs.append(
        JobOptions(
            "demo.finalize",
            {"speed": speed},
            tags=[run_tag, "finalize"],
            depends_on=DependsOn(tags=pipeline),
        )
    )
    upload_index = len(jobs)
    jobs.append(
        JobOptions(
            "demo.upload",
            {"endpoint": "partner.example/reports", "always_fail": True, "speed": speed},
            tags=[run_tag, "partner"],
            max_attempts=1,
            depends_on=DependsOn(job_ids=[batch_dep_ref(aggregate_index)]),
        )
    )
    jobs.append(
        JobOptions(
            "demo.notify",
            {"to": "partner", "speed": speed},
            tags=[run_tag, "partner"],
            depends_on=DependsOn(job_ids=[batch_dep_ref(upload_index)]),
        )
    )
    return jobs


def _label(job: JobRecord) -> str:
    payload = job.payload if isinstance(job.payload, dict) else {}
    detail = {
        "demo.aggregate": "report",
        "demo.finalize": "publish",
        "demo.upload": "to partner",
        "demo.notify": "partner",
    }.get(job.job_type, str(payload.get("file", "")))
    return f"{job.job_type.removeprefix('demo.')} {detail}".strip()


def _silence_logging() -> None:
    """The worker logs every failure; the demo shows its own in the table, and reports any
    other error itself (one line, then it stops)."""
    logger = logging.getLogger("dataqueue")
    logger.handlers[:] = [logging.NullHandler()]
    logger.propagate = False


def is_settled(job: JobRecord) -> bool:
    """Completed, cancelled, or failed with no retry left."""
    if job.status in (JobStatus.COMPLETED, JobStatus.CANCELLED):
        return True
    return job.status == JobStatus.FAILED and (
        job.attempts >= job.max_attempts or job.next_attempt_at is None
    )


@dataclass
class _Watch:
    """What the live view knows: latest records, transitions seen, when it started."""

    ids: list[int]
    started: float = field(default_factory=time.monotonic)
    jobs: dict[int, JobRecord] = field(default_factory=dict)
    log: deque[Text] = field(default_factory=lambda: deque(maxlen=7))

    def update(self, records: list[JobRecord]) -> None:
        for job in records:
            old = self.jobs.get(job.id)
            self.jobs[job.id] = job
            if old is None or (old.status, old.attempts) == (job.status, job.attempts):
                continue
            line = Text(f"{self.elapsed():5.1f}s  #{job.id} {_label(job)}: ")
            line.append_text(status_text(old.status))
            line.append(" → ")
            line.append_text(status_text(job.status))
            if job.status == JobStatus.FAILED and not is_settled(job):
                line.append("  (will retry)", style="yellow")
            self.log.append(line)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def done(self) -> bool:
        return len(self.jobs) == len(self.ids) and all(map(is_settled, self.jobs.values()))

    def render(self, backend: str) -> Group:
        table = Table(
            title=f"dataqueue demo · {backend} · {self.elapsed():.1f} s",
            header_style="bold",
            title_justify="left",
        )
        for name in ("id", "job", "status", "attempt", "progress", "needs"):
            table.add_column(name)
        index = {job_id: i for i, job_id in enumerate(self.ids)}
        for job_id in self.ids:
            job = self.jobs.get(job_id)
            if job is None:
                continue
            needs = [f"#{d}" for d in job.depends_on_job_ids or ()]
            if job.depends_on_tags:
                needs.append("tag drain")
            table.add_row(
                str(job.id),
                _label(job),
                status_text(job.status),
                f"{job.attempts}/{job.max_attempts}",
                progress_text(
                    job.progress
                    if job.progress is not None
                    else (100 if job.status == JobStatus.COMPLETED else None)
                ),
                " ".join(needs) or "-",
            )
            del index[job_id]
        return Group(table, Text("recent:", style="bold"), *self.log)


def _first(events: list[JobEvent], kind: JobEventType) -> datetime | None:
    return next((e.created_at for e in events if e.event_type == kind), None)


def _last(events: list[JobEvent], kind: JobEventType) -> datetime | None:
    return next((e.created_at for e in reversed(events) if e.event_type == kind), None)


def _note(job: JobRecord, events: list[JobEvent]) -> str:
    notes: list[str] = []
    failures = [e for e in events if e.event_type == JobEventType.FAILED]
    for fail_event in failures:
        after = next(
            (
                e.created_at
                for e in events
                if e.event_type == JobEventType.PROCESSING and e.created_at > fail_event.created_at
            ),
            None,
        )
        if after is not None:
            delay = (after - fail_event.created_at).total_seconds()
            notes.append(f"failed, retried after {delay:.1f} s backoff")
        else:
            notes.append("failed, no attempt left")
    for e in events:
        meta = e.metadata or {}
        if e.event_type == JobEventType.CANCELLED and meta.get("dependency_cascade"):
            notes.append(f"cascade: #{meta.get('root_job_id')} failed")
    if job.depends_on_tags and job.status == JobStatus.COMPLETED:
        notes.append("ran after the tag drain")
    return "; ".join(notes) or "-"


def _summary(q: Any, watch: _Watch, backend: str) -> Group:
    table = Table(title="summary", header_style="bold", title_justify="left")
    for name, justify in (
        ("id", "right"),
        ("job", "left"),
        ("status", "left"),
        ("attempts", "right"),
        ("waited", "right"),
        ("ran", "right"),
        ("notes", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    counts: dict[str, int] = {}
    retries = 0
    for job_id in watch.ids:
        job = watch.jobs[job_id]
        events = q.get_job_events(job_id)
        counts[job.status.value] = counts.get(job.status.value, 0) + 1
        start = _first(events, JobEventType.PROCESSING)
        last_start = _last(events, JobEventType.PROCESSING)  # the successful attempt's run
        end = _last(events, JobEventType.COMPLETED) or _last(events, JobEventType.FAILED)
        waited = f"{(start - job.created_at).total_seconds():.1f} s" if start else "-"
        ran = f"{(end - last_start).total_seconds():.1f} s" if last_start and end else "-"
        retries += sum(1 for e in events if e.event_type == JobEventType.FAILED) - (
            1 if job.status == JobStatus.FAILED else 0
        )
        table.add_row(
            str(job.id),
            _label(job),
            status_text(job.status),
            f"{job.attempts}/{job.max_attempts}",
            waited,
            ran,
            _note(job, events),
        )
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    line = Text(
        f"{len(watch.ids)} jobs on {backend} in {watch.elapsed():.1f} s: {parts}; "
        f"{retries} retr{'y' if retries == 1 else 'ies'}",
        style="bold",
    )
    return Group(table, line)


@connection_options()
def demo(
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="postgres or redis (default: from the URL)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Jobs run at once.")
    ] = 4,
    speed: Annotated[
        float, typer.Option("--speed", min=0.01, help="Scale every job's duration.")
    ] = 1.0,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Give up after this many seconds.")
    ] = 60.0,
    *,
    where: Target,
) -> None:
    """Enqueue a small pipeline (dependencies, a retry with backoff, a tag drain, a cascade
    cancellation) in one call and run it with an in-process worker, showing every job live."""

    from dataqueue.cli.demo_handlers import HANDLERS

    if backend not in (None, "postgres", "redis"):
        raise fail(f"--backend must be postgres or redis, got {backend!r}")
    if backend == "redis" and not where.is_redis:
        raise fail("the redis demo needs a Redis URL: --url redis://host:6379/0")
    if backend == "postgres" and where.is_redis:
        raise fail("--backend postgres was given with a Redis URL")
    run_tag = f"demo:{uuid.uuid4().hex[:8]}"
    _silence_logging()
    # The embedded server: a server this demo starts is stopped on the way out; one that was
    # already running is left as it was (and the summary says so).
    already_running = False
    if not where.url:
        already_running = where.embedded().status().running
        where = dataclasses.replace(where, ephemeral=True)
    try:
        _run_demo(where, run_tag, concurrency, speed, timeout, HANDLERS)
    finally:
        if not where.url:
            data_dir = where.embedded().data_dir
            if already_running:
                console.print(
                    f"The embedded PostgreSQL in {data_dir} was already running and is left "
                    "running; stop it with: dataqueue db stop"
                )
            else:
                console.print(f"Stopped the embedded PostgreSQL this demo started ({data_dir}).")


def _run_demo(
    where: Target,
    run_tag: str,
    concurrency: int,
    speed: float,
    timeout: float,
    handlers: dict[str, Any],
) -> None:
    from rich.live import Live

    with where.queue() as q:
        label = q.backend_name if where.url else "postgres (embedded)"
        q.migrate()  # idempotent; the demo should work on a fresh database
        watch = _Watch(ids=[])
        watch.ids = q.add_jobs(build_pipeline(run_tag, speed))
        errors: list[BaseException] = []
        processor = q.create_processor(
            handlers,
            concurrency=concurrency,
            batch_size=concurrency,
            poll_interval=0.2,
            job_type=list(handlers),
            on_error=errors.append,
        )
        processor.start_in_background()
        try:
            with Live(watch.render(label), console=console, refresh_per_second=10) as live:
                while not watch.done():
                    if errors:
                        raise fail(f"the worker failed: {describe(errors[0])}")
                    if watch.elapsed() > timeout:
                        raise fail(f"the demo did not finish within {timeout:.0f} s")
                    watch.update(q.get_jobs_by_tags([run_tag], mode="all", limit=100))
                    live.update(watch.render(label))
                    time.sleep(0.1)
                live.update(watch.render(label))
        finally:
            processor.close(10)
        console.print()
        if not console.is_terminal:
            console.print()  # the last live frame ends without a newline when not a terminal
        console.print(_summary(q, watch, label))
