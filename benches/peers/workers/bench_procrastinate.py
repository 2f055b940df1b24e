"""procrastinate's app and no-op task, run by
``procrastinate --app=bench_procrastinate.app worker``; the client defers through the same app."""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector
from record import record

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_URL", "")))


@app.task(name="noop")
async def noop(t: float) -> None:
    record(t)
