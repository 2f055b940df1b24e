"""``dataqueue jobs``: list, inspect, cancel and retry jobs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dataqueue.cli._common import (
    JsonOpt,
    Target,
    connection_options,
    console,
    err_console,
    fail,
    print_json,
)
from dataqueue.options import INT64_MAX, check_int
from dataqueue.records import JobEvent, JobRecord, JobStatus, TagQueryMode

app: typer.Typer = typer.Typer(help="List, inspect, cancel and retry jobs.", no_args_is_help=True)

JobIdArg = Annotated[int, typer.Argument(help="Job id.", metavar="ID", show_default=False)]
JobIdsArg = Annotated[
    list[int], typer.Argument(help="Job id(s).", metavar="ID", show_default=False)
]


@app.command("list")
@connection_options()
def list_jobs(
    status: Annotated[
        JobStatus | None, typer.Option("--status", "-s", help="Only jobs in this status.")
    ] = None,
    job_type: Annotated[
        str | None, typer.Option("--job-type", "-t", help="Only this type.")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only jobs with this tag (repeatable).")
    ] = None,
    tag_mode: Annotated[
        TagQueryMode, typer.Option("--tag-mode", help="How --tag values match.")
    ] = TagQueryMode.ALL,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 20,
    as_json: JsonOpt = False,
    *,
    where: Target,
) -> None:
    """List jobs, newest first."""
    filters: dict[str, Any] = {}
    if job_type:
        filters["job_type"] = job_type
    if tag:
        filters["tags"] = {"values": list(tag), "mode": tag_mode.value}
    with where.queue() as q:
        jobs: list[JobRecord]
        if status is None:
            jobs = q.get_jobs(filters or None, limit=limit)
        elif not filters:
            jobs = q.get_jobs_by_status(status, limit=limit)
        else:
            jobs = _filtered_by_status(q, filters, status, limit)
    if as_json:
        print_json(jobs)
    elif not jobs:
        console.print("no jobs")
    else:
        console.print(_jobs_table(jobs))


def _filtered_by_status(
    q: Any, filters: dict[str, Any], status: JobStatus, limit: int
) -> list[JobRecord]:
    """Status plus other filters: page through ``get_jobs`` (newest first) by id cursor."""
    found: list[JobRecord] = []
    cursor: int | None = None
    while len(found) < limit:
        page: list[JobRecord] = q.get_jobs(filters, limit=200, cursor=cursor)
        if not page:
            break
        found.extend(j for j in page if j.status == status)
        cursor = page[-1].id
    return found[:limit]


def _jobs_table(jobs: list[JobRecord]) -> Any:
    from dataqueue.cli.render import jobs_table

    return jobs_table(jobs, fit=console)


def _job_and_events(where: Target, job_id: int) -> tuple[JobRecord, list[JobEvent]]:
    """One job and its events; exit with an error when there is no such job."""
    with where.queue() as q:
        job = q.get_job(job_id)
        if job is None:
            raise fail(f"job {job_id} not found")
        return job, q.get_job_events(job_id)


def _print_job(where: Target, job_id: int, as_json: bool, *, events_only: bool) -> None:
    """Print one job with its events (or only its events), as JSON or rendered."""
    from dataqueue.cli.render import events_table, job_detail

    job, events = _job_and_events(where, job_id)
    if as_json:
        print_json(events if events_only else {"job": job, "events": events})
    else:
        console.print(events_table(events) if events_only else job_detail(job, events))


@app.command("show")
@connection_options()
def show(job_id: JobIdArg, as_json: JsonOpt = False, *, where: Target) -> None:
    """Show one job with its events."""
    _print_job(where, job_id, as_json, events_only=False)


@app.command("events")
@connection_options()
def events(job_id: JobIdArg, as_json: JsonOpt = False, *, where: Target) -> None:
    """Show a job's event history (added, processing, failed, retried, ...)."""
    _print_job(where, job_id, as_json, events_only=True)


def _change(action: str, job_ids: list[int], where: Target, as_json: bool) -> None:
    results: dict[int, str] = {}
    for job_id in job_ids:  # every id checked before the first one is changed
        check_int(job_id, "job id", minimum=-INT64_MAX - 1, maximum=INT64_MAX)
    with where.queue() as q:
        for job_id in job_ids:
            job = q.get_job(job_id)
            if job is None:
                results[job_id] = "not found"
                continue
            changed = q.cancel_job(job_id) if action == "cancel" else q.retry_job(job_id)
            results[job_id] = "ok" if changed else f"unchanged ({job.status.value})"
    if as_json:
        print_json([{"id": i, "result": r} for i, r in results.items()])
    else:
        done = "cancelled" if action == "cancel" else "retried"
        for job_id, result in results.items():
            if result == "ok":
                console.print(f"[green]{done}[/green] job {job_id}")
            else:
                err_console.print(f"[yellow]job {job_id}: {result}[/yellow]")
    if any(r != "ok" for r in results.values()):
        raise typer.Exit(1)


@app.command("cancel")
@connection_options()
def cancel(
    job_ids: JobIdsArg,
    as_json: JsonOpt = False,
    *,
    where: Target,
) -> None:
    """Cancel pending/waiting jobs (their dependents are cancelled too). Exit 1 if any was not
    cancelled."""
    _change("cancel", job_ids, where, as_json)


@app.command("retry")
@connection_options()
def retry(
    job_ids: JobIdsArg,
    as_json: JsonOpt = False,
    *,
    where: Target,
) -> None:
    """Make failed (or stuck processing) jobs runnable again with a fresh attempt budget. Exit 1
    if any was not retried."""
    _change("retry", job_ids, where, as_json)
