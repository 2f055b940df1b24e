"""The ``dataqueue`` command line (Typer + rich).

``main`` runs the command line; the console script and ``python -m dataqueue`` reach it through
``dataqueue.__main__.main``, which explains a missing ``cli`` extra in one line. Errors are
reported as one red line on stderr with a non-zero exit;
``--debug`` (anywhere on the command line) or ``DATAQUEUE_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from dataqueue.cli._common import describe, env_flag, print_error

__all__ = ["app", "main"]

app: typer.Typer = typer.Typer(
    name="dataqueue",
    help=(
        "dataqueue: a job queue for PostgreSQL or Redis, with job dependencies, retries, cron "
        "and durable waits.\n\n"
        "Every command takes --url (or DATAQUEUE_URL): a postgresql:// or redis:// URL. "
        "Without one, a private embedded PostgreSQL is started in --data-dir and used."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from dataqueue import __version__

        typer.echo(f"dataqueue {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="Show full tracebacks on errors (accepted anywhere on the line)."
        ),
    ] = False,
) -> None:
    """Root options (``--debug`` is stripped by ``main`` before parsing, wherever it stands)."""


def _register() -> None:
    from dataqueue.cli import cron_cmd, dashboard_cmd, db, demo, jobs, migrate, worker

    app.add_typer(jobs.app, name="jobs")
    app.add_typer(cron_cmd.app, name="cron")
    app.add_typer(db.app, name="db")
    app.command("migrate")(migrate.migrate)
    app.command("worker")(worker.worker)
    app.command("demo")(demo.demo)
    app.command("dashboard")(dashboard_cmd.dashboard)


_register()


def _quiet_logging(debug: bool) -> None:
    """Driver warnings (e.g. a connection pool retrying) must not spill onto the terminal: the
    command reports the error itself. ``worker`` and ``demo`` install their own handlers."""
    import logging

    root = logging.getLogger()
    if debug:
        logging.basicConfig(level=logging.INFO)
    elif not root.handlers:
        root.addHandler(logging.NullHandler())


def _is_usage_error(exc: BaseException) -> bool:
    """A click exception (typer vendors click, so the class is matched by its interface)."""
    return callable(getattr(exc, "format_message", None)) and hasattr(exc, "exit_code")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or env_flag("DATAQUEUE_DEBUG")
    args = [a for a in args if a != "--debug"]
    _quiet_logging(debug)
    try:
        # standalone_mode=False: usage errors come here, to be printed as one line too.
        code = app(args=args, prog_name="dataqueue", standalone_mode=False)
    except typer.Abort:
        print_error("aborted")
        sys.exit(1)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print_error("interrupted")
        sys.exit(130)
    except Exception as exc:
        if _is_usage_error(exc):  # click's (typer's) bad option, missing argument, ...
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} -h')" if ctx is not None else ""
            print_error(f"{exc.format_message()}{hint}")  # type: ignore[attr-defined]
            sys.exit(int(getattr(exc, "exit_code", 2)))
        if debug:
            raise
        print_error(describe(exc))
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
