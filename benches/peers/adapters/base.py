"""The one interface every system of the comparison implements.

The harness (``harness.py``) drives an adapter in its own process, one system at a time:
``open`` (connect, install the schema into the fresh storage), ``enqueue`` one job at a time,
``enqueue_bulk`` through the library's bulk API, and ``worker_command``: the argv of the
library's own worker (its CLI where it has one), which loads a small task module from
``benches/peers/workers/``. Every job is the same no-op whose only argument is the enqueue
time ``t`` (``time.time()``); its handler calls ``record.record(t)`` first thing.

Methods are coroutines so that async libraries are measured on their native API; a blocking
library's calls simply run inside them (nothing else runs on that loop).
"""

from __future__ import annotations

import abc
import asyncio
import importlib.util
import os
import sys
from collections.abc import Awaitable, Iterable
from importlib import metadata
from typing import Any, ClassVar

#: The folder of the worker programs: on the workers' PYTHONPATH (and the harness's sys.path).
WORKERS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workers")
#: The job type / task / entrypoint name every system registers its no-op under.
TASK = "noop"
#: Jobs run at once by the one worker process of every system.
CONCURRENCY = 10
#: Enqueue calls in flight at once where a library has no bulk API (``gather_bounded``).
BULK_IN_FLIGHT = 100


def bin_path(program: str) -> str:
    """A console script installed beside this Python (the venv's bin/)."""
    return os.path.join(os.path.dirname(sys.executable), program)


class Adapter(abc.ABC):
    """One system under test: a library on one backend family."""

    #: ``--only`` name, e.g. ``"saq-redis"``.
    name: ClassVar[str]
    #: Shown in the table, e.g. ``"SAQ"``; by default the name.
    label: ClassVar[str]
    #: ``"postgres"`` or ``"redis"``: the family its ratios are taken in.
    family: ClassVar[str]
    #: Importable modules it needs; missing ones make the system unavailable. By default the
    #: one module named like the system.
    modules: ClassVar[tuple[str, ...]]
    #: Distributions whose versions the report states; by default its modules.
    distributions: ClassVar[tuple[str, ...]]
    #: What ``enqueue_bulk`` calls (the report's footnote).
    bulk_api: ClassVar[str]
    #: How its worker runs at concurrency 10 (the report's footnote).
    worker_note: ClassVar[str]
    #: True for dataqueue's own rows (ratios are taken to the best *other* system).
    ours: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Most systems are one distribution of one module named like the system: a class
        # states only what differs. A class without a name is a family's shared base.
        super().__init_subclass__(**kwargs)
        if "name" not in vars(cls):
            return
        for attr, default in (
            ("label", lambda: cls.name),
            ("modules", lambda: (cls.name,)),
            ("distributions", lambda: cls.modules),
        ):
            if not hasattr(cls, attr):
                setattr(cls, attr, default())

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def missing(cls) -> list[str]:
        """The modules this system needs that are not installed."""
        return [m for m in cls.modules if importlib.util.find_spec(m) is None]

    @classmethod
    def versions(cls) -> dict[str, str]:
        out = {}
        for dist in cls.distributions:
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                out[dist] = "missing"
        return out

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, and create the library's schema in the (empty) storage."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def enqueue(self, t: float) -> None:
        """Enqueue one no-op job with argument ``t`` (one call of the single-job API)."""

    @abc.abstractmethod
    async def enqueue_bulk(self, ts: list[float]) -> None:
        """Enqueue ``len(ts)`` no-op jobs with the library's bulk API."""

    @abc.abstractmethod
    def worker_command(self) -> list[str]:
        """The argv of one worker process at concurrency 10 running the no-op. It gets
        ``BENCH_URL`` (this storage) and ``BENCH_RECORD`` in its environment."""


def import_worker_module(name: str) -> object:
    """Import a task module of ``workers/`` in the client, as an application imports its
    tasks to enqueue them (Celery, Dramatiq)."""
    if WORKERS_DIR not in sys.path:
        sys.path.insert(0, WORKERS_DIR)
    return importlib.import_module(name)


async def gather_bounded(calls: Iterable[Awaitable[Any]], in_flight: int = BULK_IN_FLIGHT) -> None:
    """Await ``calls`` concurrently, at most ``in_flight`` at once: the bulk enqueue of a
    library without a bulk API (one connection per call in flight, so unbounded would open
    thousands)."""
    pending: set[asyncio.Future[Any]] = set()
    for call in calls:
        pending.add(asyncio.ensure_future(call))
        if len(pending) >= in_flight:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                fut.result()
    if pending:
        for fut in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(fut, BaseException):
                raise fut
