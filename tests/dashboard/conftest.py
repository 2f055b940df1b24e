"""Dashboard fixtures: a fresh storage per test on each backend, a sync queue to set up jobs,
and the dashboard app for an async queue on the same storage.

``dash`` serves the app through Starlette's TestClient (as a loopback client); ``live`` runs it
with uvicorn on a free port in a background thread, for the browser tests.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _storage import Storage, fresh_storage
from _variants import selected_backends

#: The test's storage (``url``, ``key_prefix`` and ``queue_options()``).
Place = Storage


@pytest.fixture(params=selected_backends())
def place(request: pytest.FixtureRequest) -> Iterator[Place]:
    with fresh_storage(request.param, "dqdash") as storage:
        yield storage


@pytest.fixture
def sq(place: Place) -> Iterator[Any]:
    """A sync queue on the test storage, for arranging jobs."""

    q = place.queue()
    yield q
    q.close()


@dataclass
class Dash:
    place: Place
    sq: Any
    _clients: list[Any] = field(default_factory=list)

    def client(self, client_host: str = "127.0.0.1", **app_options: Any) -> Any:
        """A started TestClient for ``create_app(async queue, **app_options)``."""
        from dataqueue import init_async_job_queue
        from dataqueue.dashboard import create_app
        from starlette.testclient import TestClient

        aq = init_async_job_queue(self.place.url, **self.place.queue_options())
        app = create_app(aq, **app_options)
        c = TestClient(app, client=(client_host, 50123), follow_redirects=False)
        c.__enter__()
        self._clients.append((c, aq))
        return c

    def close(self) -> None:
        for c, aq in self._clients:
            c.portal.call(aq.close)
            c.__exit__(None, None, None)


@pytest.fixture
def dash(place: Place, sq: Any) -> Iterator[Dash]:
    d = Dash(place, sq)
    yield d
    d.close()


@pytest.fixture
def api(dash: Dash) -> Any:
    """A loopback TestClient with the default (no auth) options."""
    return dash.client()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    url: str
    sq: Any
    place: Place


@pytest.fixture
def live(place: Place, sq: Any) -> Iterator[Live]:
    """The dashboard served by uvicorn on 127.0.0.1:<free port> in a background thread."""
    import uvicorn
    from dataqueue import init_async_job_queue
    from dataqueue.dashboard import create_app

    port = free_port()
    holder: dict[str, Any] = {}

    def run() -> None:
        async def main() -> None:
            aq = init_async_job_queue(place.url, **place.queue_options())
            app = create_app(aq, refresh_seconds=0.5)
            server = uvicorn.Server(
                uvicorn.Config(
                    app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
                )
            )
            holder["server"] = server
            try:
                await server.serve()
            finally:
                await aq.close()

        asyncio.run(main())

    t = threading.Thread(target=run, name="dashboard-uvicorn", daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        server = holder.get("server")
        if server is not None and server.started:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("uvicorn did not start")
    try:
        yield Live(f"http://127.0.0.1:{port}", sq, place)
    finally:
        holder["server"].should_exit = True
        t.join(15)


Runner = Callable[..., Any]
