"""The systems of the comparison, in table order: each a module of its own with one
:class:`~adapters.base.Adapter` class per backend it runs on."""

from __future__ import annotations

from .arq import Arq
from .base import Adapter
from .celery import Celery
from .dataqueue import DataqueuePostgres, DataqueueRedis
from .dramatiq import Dramatiq
from .pgqueuer import Pgqueuer
from .procrastinate import Procrastinate
from .rq import Rq
from .saq import SaqPostgres, SaqRedis

SYSTEMS: dict[str, type[Adapter]] = {
    cls.name: cls
    for cls in (
        DataqueuePostgres,
        Pgqueuer,
        Procrastinate,
        SaqPostgres,
        DataqueueRedis,
        SaqRedis,
        Arq,
        Rq,
        Dramatiq,
        Celery,
    )
}

__all__ = ["SYSTEMS", "Adapter"]
