"""Rich renderings of jobs, events and cron schedules for the terminal."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from dataqueue.records import CronScheduleRecord, JobEvent, JobRecord, JobStatus

__all__ = ["STATUS_STYLE", "cron_table", "events_table", "job_detail", "jobs_table", "status_text"]

STATUS_STYLE: dict[str, str] = {
    JobStatus.PENDING.value: "yellow",
    JobStatus.PROCESSING.value: "bold cyan",
    JobStatus.WAITING.value: "blue",
    JobStatus.COMPLETED.value: "green",
    JobStatus.FAILED.value: "bold red",
    JobStatus.CANCELLED.value: "magenta",
    "active": "green",
    "paused": "yellow",
}


def status_text(status: Any) -> Text:
    value = getattr(status, "value", status)
    return Text(str(value), style=STATUS_STYLE.get(str(value), ""))


def when(value: datetime | None) -> str:
    """A short local-independent UTC timestamp."""
    if value is None:
        return "-"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def short_json(value: Any, width: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def progress_text(progress: int | None) -> str:
    if progress is None:
        return "-"
    filled = max(0, min(10, progress // 10))
    return f"{'█' * filled}{'░' * (10 - filled)} {progress:3d}%"


def jobs_table(
    jobs: Iterable[JobRecord], title: str | None = None, *, fit: Console | None = None
) -> Table:
    """Jobs as a table. With ``fit``, a table wider than that console is replaced by a compact
    one (no priority/created columns, progress as a number, types wrap): rich would otherwise
    squeeze columns such as the id down to nothing on an 80-column terminal."""
    jobs = list(jobs)
    table = _jobs_table(jobs, title, compact=False)
    if (
        fit is not None
        and fit.measure(table, options=fit.options.update_width(9999)).maximum > fit.width
    ):
        table = _jobs_table(jobs, title, compact=True)
    return table


def _jobs_table(jobs: list[JobRecord], title: str | None, *, compact: bool) -> Table:
    table = Table(title=title, header_style="bold", expand=False)
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("type", no_wrap=not compact, overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("attempt", justify="right", no_wrap=True)
    table.add_column("progress", justify="right" if compact else "left", no_wrap=True)
    if not compact:
        table.add_column("priority", justify="right", no_wrap=True)
    table.add_column("tags", overflow="fold")
    table.add_column("depends on", overflow="fold")
    if not compact:
        table.add_column("created (UTC)", no_wrap=True)
    for job in jobs:
        deps = [f"#{i}" for i in job.depends_on_job_ids or ()]
        if job.depends_on_tags:
            deps.append("tags: " + ", ".join(job.depends_on_tags))
        progress = "-" if job.progress is None else f"{job.progress}%"
        cells: list[Any] = [
            str(job.id),
            job.job_type,
            status_text(job.status),
            f"{job.attempts}/{job.max_attempts}",
            progress if compact else progress_text(job.progress),
            *(() if compact else (str(job.priority),)),
            ", ".join(job.tags or ()) or "-",
            " ".join(deps) or "-",
            *(() if compact else (when(job.created_at),)),
        ]
        table.add_row(*cells)
    return table


def job_detail(job: JobRecord, events: Iterable[JobEvent] = ()) -> Group:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, Any]] = [
        ("id", job.id),
        ("type", job.job_type),
        ("status", status_text(job.status)),
        ("attempts", f"{job.attempts}/{job.max_attempts}"),
        ("priority", job.priority),
        ("progress", progress_text(job.progress)),
        ("payload", short_json(job.payload, 100)),
        ("output", short_json(job.output, 100) if job.output is not None else "-"),
        ("tags", ",".join(job.tags or ()) or "-"),
        ("depends on ids", " ".join(map(str, job.depends_on_job_ids or ())) or "-"),
        ("depends on tags", ",".join(job.depends_on_tags or ()) or "-"),
        ("group", job.group_id or "-"),
        ("created", when(job.created_at)),
        ("run at", when(job.run_at)),
        ("started", when(job.started_at)),
        ("completed", when(job.completed_at)),
        ("next attempt", when(job.next_attempt_at)),
        ("locked by", job.locked_by or "-"),
        ("failure reason", job.failure_reason.value if job.failure_reason else "-"),
        ("pending reason", job.pending_reason or "-"),
    ]
    for key, value in rows:
        table.add_row(key, value if isinstance(value, Text) else str(value))
    parts: list[Any] = [table]
    if job.error_history:
        errors = Table(title="error history", header_style="bold")
        errors.add_column("at")
        errors.add_column("error")
        for entry in job.error_history:
            errors.add_row(
                str(entry.get("timestamp", entry.get("at", "-"))),
                str(entry.get("error") or entry.get("message", entry)),
            )
        parts.append(errors)
        last = job.error_history[-1]
        if last.get("traceback"):  # the newest failure's traceback, as the handler raised it
            parts.append(Text("traceback of the last failure:", style="bold"))
            parts.append(Text(str(last["traceback"]).rstrip()))
    events = list(events)
    if events:
        parts.append(events_table(events))
    return Group(*parts)


def events_table(events: Iterable[JobEvent]) -> Table:
    table = Table(title="events", header_style="bold")
    table.add_column("id", justify="right")
    table.add_column("at (UTC)")
    table.add_column("event")
    table.add_column("metadata")
    for event in events:
        table.add_row(
            str(event.id),
            when(event.created_at),
            status_text(event.event_type),
            short_json(event.metadata, 70) if event.metadata else "-",
        )
    return table


#: Below this console width ``cron list`` prints one block per schedule instead of a table
#: (its eight columns cannot fit without breaking words).
CRON_TABLE_MIN_WIDTH = 110


def cron_table(schedules: Iterable[CronScheduleRecord], width: int | None = None) -> Any:
    """The schedules as a table, or (``width`` below ``CRON_TABLE_MIN_WIDTH``) as one block
    per schedule, so no cell is broken mid-word."""
    items = list(schedules)
    if width is not None and width < CRON_TABLE_MIN_WIDTH:
        blocks: list[Any] = []
        for s in items:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold", no_wrap=True)
            grid.add_column()
            head = Text(f"#{s.id} ", style="bold") + Text(s.schedule_name, style="bold")
            head += Text("  ") + status_text(s.status)
            grid.add_row("expression", f"{s.cron_expression}  ({s.timezone})")
            grid.add_row("job type", s.job_type)
            grid.add_row("next run", f"{when(s.next_run_at)} UTC")
            grid.add_row("last job", str(s.last_job_id) if s.last_job_id is not None else "-")
            blocks.extend([head, grid, Text("")])
        return Group(*blocks[:-1])
    table = Table(header_style="bold")
    for name in (
        "id",
        "name",
        "expression",
        "timezone",
        "job type",
        "status",
        "next run (UTC)",
        "last job",
    ):
        # The id, name and status are what ``cron pause/resume/remove`` act on: never cut.
        table.add_column(name, no_wrap=name in ("id", "name", "status"), overflow="fold")
    for s in items:
        table.add_row(
            str(s.id),
            s.schedule_name,
            s.cron_expression,
            s.timezone,
            s.job_type,
            status_text(s.status),
            when(s.next_run_at),
            str(s.last_job_id) if s.last_job_id is not None else "-",
        )
    return table
