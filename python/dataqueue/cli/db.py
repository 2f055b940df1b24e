"""``dataqueue db``: the embedded PostgreSQL server used when no URL is given."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dataqueue.cli._common import JsonOpt, console, print_json

app: typer.Typer = typer.Typer(
    help=(
        "Manage the embedded PostgreSQL server (the default database when no --url is given). "
        "It listens on a unix socket only, in its data folder."
    ),
    no_args_is_help=True,
)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="DATAQUEUE_DATA_DIR",
        help="Data folder (default ~/.local/share/dataqueue/pg; /var/lib/dataqueue/pg as root).",
        show_default=False,
    ),
]


@app.command("start")
def start(data_dir: DataDir = None) -> None:
    """Start the server (initialising and migrating the database on first use)."""
    from dataqueue import init_job_queue
    from dataqueue.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(data_dir)
    started = server.start()
    with init_job_queue(server.url()) as q:
        q.migrate()
    st = server.status()
    word = "started" if started else "already running"
    console.print(
        f"[green]{word}[/green]: pid {st.pid}, socket {st.socket_dir}, data {server.root}"
    )


@app.command("stop")
def stop(data_dir: DataDir = None) -> None:
    """Stop the server (fast shutdown), also one left behind by a killed command."""
    from dataqueue.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(data_dir)
    if server.stop():
        console.print(f"[green]stopped[/green] the server of {server.root}")
    else:
        console.print(f"not running ({server.root})")


@app.command("status")
def status(data_dir: DataDir = None, as_json: JsonOpt = False) -> None:
    """Show whether the server runs. Exit code 0 if it runs, 3 if not (like pg_ctl)."""
    from dataqueue.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(data_dir)
    st = server.status()
    if as_json:
        print_json(
            {
                "running": st.running,
                "state": st.state,
                "pid": st.pid,
                "port": st.port,
                "socket_dir": str(st.socket_dir) if st.socket_dir else None,
                "data_dir": str(server.root),
                "url": server.url() if st.ready else None,
            }
        )
    elif st.running:
        console.print(
            f"[green]running[/green] ({st.state}): pid {st.pid}, socket {st.socket_dir}, "
            f"port {st.port}, data {server.root}"
        )
    else:
        console.print(f"[yellow]not running[/yellow] (data {server.root})")
    if not st.running:
        raise typer.Exit(3)


@app.command("url")
def url(data_dir: DataDir = None) -> None:
    """Print the server's libpq URL (for psql, psycopg or DATAQUEUE_URL); it must be running."""
    from dataqueue.embedded import EmbeddedPostgres

    typer.echo(EmbeddedPostgres(data_dir).url())
