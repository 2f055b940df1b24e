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
from dataqueue.config import ENV_GIVE_UP_AFTER, ENV_LOG_LEVEL
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


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

#: ``dataqueue worker``'s default for how long the backend may stay unreachable (the
#: library's default is to retry forever: ``give_up_after=None``).
CLI_GIVE_UP_AFTER = 300.0


def _configure_logging(level: str) -> None:
    from rich.logging import RichHandler

    name = level.upper()
    if name not in _LEVELS:
        raise ConfigurationError(f"--log-level must be one of {', '.join(_LEVELS)}, got {level!r}")
    handler = RichHandler(
        console=console, show_path=False, rich_tracebacks=False, log_time_format="[%X]"
    )
    root = logging.getLogger("dataqueue")
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, name))
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
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logging (same as --log-level DEBUG).")
    ] = False,
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            envvar=ENV_LOG_LEVEL,
            help="DEBUG (tracebacks too), INFO (a line per job start and end), WARNING, ERROR.",
        ),
    ] = "INFO",
    give_up_after: Annotated[
        float,
        typer.Option(
            "--give-up-after",
            envvar=ENV_GIVE_UP_AFTER,
            min=0.0,
            help="Exit with status 1 when the backend stays unreachable this many seconds "
            "(0: retry forever).",
        ),
    ] = CLI_GIVE_UP_AFTER,
    claim_all_types: Annotated[
        bool,
        typer.Option(
            "--claim-all-types",
            help="Claim every job type, failing those without a handler (no_handler); by "
            "default only the handlers' types are claimed.",
        ),
    ] = False,
    *,
    where: Target,
) -> None:
    """Run jobs with your handlers until stopped. SIGINT/SIGTERM stop it gracefully: no new
    jobs are claimed and running ones finish."""
    table = load_handlers(handlers)
    _configure_logging("DEBUG" if verbose else log_level)
    options: dict[str, Any] = {
        "concurrency": concurrency,
        "batch_size": batch_size,
        "poll_interval": poll_interval,
        "verbose": verbose,
        "give_up_after": give_up_after or None,
        "claim_all_types": claim_all_types,
    }
    if job_type:
        options["job_type"] = list(job_type)
    if worker_id:
        options["worker_id"] = worker_id
    with where.queue() as q:
        processor = q.create_processor(table, **options)
        supervisor = q.create_supervisor() if run_supervisor else None
        claimed = processor.claim_types
        if claimed is None:
            types = f"claims every job type (handlers for {', '.join(sorted(table))})"
        else:
            types = f"claims only job types {', '.join(claimed)}"
        console.print(
            f"[bold]dataqueue worker[/bold] {processor.worker_id} on "
            f"{q.backend_name}: concurrency {concurrency}, {types}"
            f"{', with supervisor' if supervisor else ''}. Ctrl-C to stop.",
            markup=True,
            highlight=False,
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
