"""``dataqueue cron``: manage cron schedules."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dataqueue.cli._common import (
    JsonOpt,
    Target,
    connection_options,
    console,
    fail,
    parse_json_option,
    print_json,
)
from dataqueue.lifecycle import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY
from dataqueue.records import CronScheduleRecord, CronStatus

app: typer.Typer = typer.Typer(
    help="List, add, pause, resume and remove cron schedules.", no_args_is_help=True
)

ScheduleArg = Annotated[
    str,
    typer.Argument(help="Schedule name (or numeric id).", metavar="SCHEDULE", show_default=False),
]


def _find(q: Any, name_or_id: str) -> CronScheduleRecord:
    schedule: CronScheduleRecord | None = q.get_cron_job_by_name(name_or_id)
    if schedule is None and name_or_id.isdigit():
        schedule = q.get_cron_job(int(name_or_id))
    if schedule is None:
        raise fail(f"no cron schedule named {name_or_id!r}")
    return schedule


@app.command("list")
@connection_options()
def list_schedules(
    status: Annotated[CronStatus | None, typer.Option("--status", help="Only this status.")] = None,
    as_json: JsonOpt = False,
    *,
    where: Target,
) -> None:
    """List cron schedules."""
    from dataqueue.cli.render import cron_table

    with where.queue() as q:
        schedules = q.list_cron_jobs(status)
    if as_json:
        print_json(schedules)
    elif not schedules:
        console.print("no cron schedules")
    else:
        console.print(cron_table(schedules, console.width))


@app.command("add")
@connection_options()
def add(
    name: Annotated[
        str, typer.Argument(help="Unique schedule name.", metavar="NAME", show_default=False)
    ],
    expression: Annotated[
        str,
        typer.Argument(
            help="Cron expression, 5 fields (or 6 with seconds), e.g. `*/5 * * * *`.",
            metavar="EXPRESSION",
            show_default=False,
        ),
    ],
    job_type: Annotated[
        str, typer.Argument(help="Job type to enqueue.", metavar="JOB_TYPE", show_default=False)
    ],
    payload: Annotated[
        str | None, typer.Option("--payload", "-p", help="Job payload as JSON.")
    ] = None,
    tz: Annotated[str, typer.Option("--timezone", help="IANA time zone.")] = "UTC",
    allow_overlap: Annotated[
        bool,
        typer.Option("--allow-overlap", help="Enqueue even while the previous job is active."),
    ] = False,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", min=1, help="Attempts per enqueued job.")
    ] = DEFAULT_MAX_ATTEMPTS,
    priority: Annotated[
        int, typer.Option("--priority", help="Job priority (higher runs first).")
    ] = DEFAULT_PRIORITY,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Job tag (repeatable).")] = None,
    timeout_ms: Annotated[
        int | None, typer.Option("--timeout-ms", min=1, help="Handler timeout in milliseconds.")
    ] = None,
    as_json: JsonOpt = False,
    *,
    where: Target,
) -> None:
    """Add a cron schedule that enqueues JOB_TYPE at each occurrence (run by workers)."""
    data = parse_json_option(payload, "--payload")
    with where.queue() as q:
        cron_id = q.add_cron_job(
            name,
            expression,
            job_type,
            data,
            max_attempts=max_attempts,
            priority=priority,
            timezone=tz,
            allow_overlap=allow_overlap,
            tags=list(tag) if tag else None,
            timeout_ms=timeout_ms,
        )
        schedule = q.get_cron_job(cron_id)
    if as_json:
        print_json(schedule)
    else:
        nxt = schedule.next_run_at.isoformat() if schedule and schedule.next_run_at else "-"
        console.print(f"[green]added[/green] cron schedule {name!r} (id {cron_id}), next run {nxt}")


def _set(action: str, name_or_id: str, where: Target) -> None:
    with where.queue() as q:
        schedule = _find(q, name_or_id)
        if action == "pause":
            q.pause_cron_job(schedule.id)
        elif action == "resume":
            q.resume_cron_job(schedule.id)
        else:
            q.remove_cron_job(schedule.id)
    past = {"pause": "paused", "resume": "resumed", "remove": "removed"}[action]
    console.print(f"[green]{past}[/green] cron schedule {schedule.schedule_name!r}")


@app.command("pause")
@connection_options()
def pause(
    schedule: ScheduleArg,
    *,
    where: Target,
) -> None:
    """Pause a schedule (no occurrences are enqueued until it is resumed)."""
    _set("pause", schedule, where)


@app.command("resume")
@connection_options()
def resume(
    schedule: ScheduleArg,
    *,
    where: Target,
) -> None:
    """Resume a paused schedule."""
    _set("resume", schedule, where)


@app.command("remove")
@connection_options()
def remove(
    schedule: ScheduleArg,
    *,
    where: Target,
) -> None:
    """Delete a schedule (jobs it already enqueued stay)."""
    _set("remove", schedule, where)
