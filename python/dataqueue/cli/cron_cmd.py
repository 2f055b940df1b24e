"""``dataqueue cron``: manage cron schedules."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dataqueue.cli._common import (
    DataDirOpt,
    EphemeralOpt,
    JsonOpt,
    KeyPrefixOpt,
    SchemaOpt,
    UrlOpt,
    console,
    fail,
    parse_json_option,
    print_json,
    target,
)
from dataqueue.records import CronScheduleRecord, CronStatus

app = typer.Typer(help="List, add, pause, resume and remove cron schedules.", no_args_is_help=True)

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
def list_schedules(
    status: Annotated[CronStatus | None, typer.Option("--status", help="Only this status.")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    key_prefix: KeyPrefixOpt = None,
    schema: SchemaOpt = None,
    data_dir: DataDirOpt = None,
    ephemeral: EphemeralOpt = False,
) -> None:
    """List cron schedules."""
    from dataqueue.cli.render import cron_table

    with target(url, key_prefix, schema, data_dir, ephemeral).queue() as q:
        schedules = q.list_cron_jobs(status)
    if as_json:
        print_json(schedules)
    elif not schedules:
        console.print("no cron schedules")
    else:
        console.print(cron_table(schedules))


@app.command("add")
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
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1)] = 3,
    priority: Annotated[int, typer.Option("--priority")] = 0,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Job tag (repeatable).")] = None,
    timeout_ms: Annotated[int | None, typer.Option("--timeout-ms", min=1)] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    key_prefix: KeyPrefixOpt = None,
    schema: SchemaOpt = None,
    data_dir: DataDirOpt = None,
    ephemeral: EphemeralOpt = False,
) -> None:
    """Add a cron schedule that enqueues JOB_TYPE at each occurrence (run by workers)."""
    data = parse_json_option(payload, "--payload")
    with target(url, key_prefix, schema, data_dir, ephemeral).queue() as q:
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


def _set(
    action: str,
    name_or_id: str,
    url: str | None,
    key_prefix: str | None,
    schema: str | None,
    data_dir: Any,
    ephemeral: bool,
) -> None:
    with target(url, key_prefix, schema, data_dir, ephemeral).queue() as q:
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
def pause(
    schedule: ScheduleArg,
    url: UrlOpt = None,
    key_prefix: KeyPrefixOpt = None,
    schema: SchemaOpt = None,
    data_dir: DataDirOpt = None,
    ephemeral: EphemeralOpt = False,
) -> None:
    """Pause a schedule (no occurrences are enqueued until it is resumed)."""
    _set("pause", schedule, url, key_prefix, schema, data_dir, ephemeral)


@app.command("resume")
def resume(
    schedule: ScheduleArg,
    url: UrlOpt = None,
    key_prefix: KeyPrefixOpt = None,
    schema: SchemaOpt = None,
    data_dir: DataDirOpt = None,
    ephemeral: EphemeralOpt = False,
) -> None:
    """Resume a paused schedule."""
    _set("resume", schedule, url, key_prefix, schema, data_dir, ephemeral)


@app.command("remove")
def remove(
    schedule: ScheduleArg,
    url: UrlOpt = None,
    key_prefix: KeyPrefixOpt = None,
    schema: SchemaOpt = None,
    data_dir: DataDirOpt = None,
    ephemeral: EphemeralOpt = False,
) -> None:
    """Delete a schedule (jobs it already enqueued stay)."""
    _set("remove", schedule, url, key_prefix, schema, data_dir, ephemeral)
