"""``dataqueue dashboard``: serve the web dashboard and HTTP API with uvicorn."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from dataqueue.cli._common import Target, connection_options, console
from dataqueue.errors import ConfigurationError

__all__ = ["dashboard"]


@connection_options()
def dashboard(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to bind. Anything but loopback needs --token or --basic-auth.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")] = 8080,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="DATAQUEUE_DASHBOARD_TOKEN",
            help="Bearer token for the API and the login form (or DATAQUEUE_DASHBOARD_TOKEN).",
            show_default=False,
        ),
    ] = None,
    basic_auth: Annotated[
        str | None,
        typer.Option(
            "--basic-auth",
            envvar="DATAQUEUE_DASHBOARD_BASIC_AUTH",
            help="USER:PASSWORD for HTTP basic auth (or DATAQUEUE_DASHBOARD_BASIC_AUTH).",
            show_default=False,
        ),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Disable every change (retry, cancel, edit, ...).")
    ] = False,
    refresh: Annotated[
        float, typer.Option("--refresh", min=0.2, help="Overview refresh period, seconds.")
    ] = 10.0,
    *,
    where: Target,
) -> None:
    """Serve the dashboard (overview, jobs, job detail, dependency graphs, cron) and its JSON
    API. Binds 127.0.0.1 unless --host says otherwise."""
    try:
        import uvicorn

        from dataqueue.dashboard import create_app
        from dataqueue.dashboard.security import is_loopback
    except ImportError as exc:
        raise ConfigurationError(
            f"the dashboard needs its extra: pip install 'dataqueue[dashboard]' ({exc})"
        ) from None
    basic: tuple[str, str] | None = None
    if basic_auth:
        user, sep, password = basic_auth.partition(":")
        if not sep or not user or not password:
            raise ConfigurationError("--basic-auth must be USER:PASSWORD")
        basic = (user, password)
    if not is_loopback(host) and not (token or basic):
        raise ConfigurationError(
            f"refusing to serve the dashboard on {host!r} without authentication: "
            "give --token (or DATAQUEUE_DASHBOARD_TOKEN) or --basic-auth"
        )
    from dataqueue.queue_async import AsyncJobQueue

    with where.queue() as sync_q:
        config = sync_q._config
        if config is None:
            raise ConfigurationError("the queue has no configuration to open an async twin")

        async def serve() -> None:
            q = AsyncJobQueue(config.build_async(), config)
            try:
                app = create_app(
                    q, token=token, basic_auth=basic, read_only=read_only, refresh_seconds=refresh
                )
                server = uvicorn.Server(
                    uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
                )
                shown = f"[{host}]" if ":" in host else host
                console.print(
                    f"[bold]dataqueue dashboard[/bold] on {sync_q.backend_name}: "
                    f"http://{shown}:{port}/"
                    f"{' (read-only)' if read_only else ''}. Ctrl-C to stop."
                )
                await server.serve()
            finally:
                await q.close()

        asyncio.run(serve())
