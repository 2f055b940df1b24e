"""``dataqueue worker MODULE:HANDLERS``: run a processor until SIGINT/SIGTERM."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import typer

from dataqueue.cli._common import (
    Target,
    connection_options,
    console,
)
from dataqueue.errors import ConfigurationError
from dataqueue.lifecycle import DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY, DEFAULT_POLL_INTERVAL
from dataqueue.tasks import collect_tasks

__all__ = ["load_handlers", "worker"]


def load_handlers(spec: str) -> dict[str, Callable[..., Any]]:
    """Import ``module.path:ATTRIBUTE`` (a mapping of job type → handler, or a function
    returning one), or ``module.path`` alone: every ``@q.task`` defined in that module. The
    current directory is importable, as with ``python -m``."""
    module_name, sep, attr = spec.partition(":")
    if not module_name or (sep and not attr):
        raise ConfigurationError(
            f"expected MODULE or MODULE:HANDLERS (e.g. app.tasks or app.jobs:HANDLERS), "
            f"got {spec!r}"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    if not sep:
        found = collect_tasks(obj)
        if not found:
            raise ConfigurationError(
                f"{module_name!r} defines no @task functions (or give MODULE:HANDLERS)"
            )
        return found
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(f"{module_name!r} has no attribute {attr!r}") from None
    if callable(obj) and not isinstance(obj, Mapping):
        obj = obj()
    if not isinstance(obj, Mapping) or not obj:
        raise ConfigurationError(f"{spec} must be a non-empty mapping of job type to handler")
    bad = [name for name, fn in obj.items() if not isinstance(name, str) or not callable(fn)]
    if bad:
        raise ConfigurationError(f"{spec}: handlers must be callables keyed by job type: {bad}")
    return dict(obj)


def _configure_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
    root = logging.getLogger("dataqueue")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


@connection_options()
def worker(
    handlers: Annotated[
        str,
        typer.Argument(
            metavar="MODULE[:HANDLERS]",
            help="Where the handlers are: a module of @q.task functions (app.tasks), or a dict "
            "of job type → function (app.jobs:HANDLERS).",
            show_default=False,
        ),
    ],
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Jobs run at once.")
    ] = DEFAULT_CONCURRENCY,
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", min=1, help="Most jobs claimed per query.")
    ] = DEFAULT_BATCH_SIZE,
    job_type: Annotated[
        list[str] | None,
        typer.Option("--job-type", "-t", help="Only claim this job type (repeatable)."),
    ] = None,
    poll_interval: Annotated[
        float,
        typer.Option("--poll-interval", min=0.05, help="Fallback poll period in seconds."),
    ] = DEFAULT_POLL_INTERVAL,
    worker_id: Annotated[
        str | None, typer.Option("--worker-id", help="Name written to locked_by.")
    ] = None,
    run_supervisor: Annotated[
        bool,
        typer.Option(
            "--supervisor/--no-supervisor",
            help="Also run maintenance: reclaim stuck jobs, clean up, expire tokens.",
        ),
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    *,
    where: Target,
) -> None:
    """Run jobs with your handlers until stopped. SIGINT/SIGTERM stop it gracefully: no new
    jobs are claimed and running ones finish."""
    table = load_handlers(handlers)
    _configure_logging(verbose)
    options: dict[str, Any] = {
        "concurrency": concurrency,
        "batch_size": batch_size,
        "poll_interval": poll_interval,
        "verbose": verbose,
    }
    if job_type:
        options["job_type"] = list(job_type)
    if worker_id:
        options["worker_id"] = worker_id
    with where.queue() as q:
        processor = q.create_processor(table, **options)
        supervisor = q.create_supervisor() if run_supervisor else None
        types = ", ".join(job_type) if job_type else ", ".join(sorted(table))
        console.print(
            f"[bold]dataqueue worker[/bold] {getattr(processor, 'worker_id', '')} on "
            f"{q.backend_name}: concurrency {concurrency}, job types {types}"
            f"{', with supervisor' if supervisor else ''}. Ctrl-C to stop."
        )
        if supervisor is not None:
            supervisor.start_in_background()
        try:
            processor.run()
        finally:
            if supervisor is not None:
                supervisor.stop_and_drain(10)
            processor.close(10)
    console.print("worker stopped")
