"""The supervisor: periodic maintenance of a queue (``queue.create_supervisor(...)``).

One run does, in order and each task isolated (an error goes to ``on_error`` and the ``error``
hook, the other tasks still run): reclaim jobs whose lease expired or that ran too long (jobs
with no attempts left fail with ``worker_lost``), delete old completed jobs, delete old job
events, expire timed-out wait tokens. ``AsyncSupervisor`` serves an ``AsyncJobQueue``;
``Supervisor`` (blocking, its background loop on a thread) serves a ``JobQueue``. The blocking
twin is generated from the async one (``supervisor_async.py`` → ``supervisor_sync.py``).
"""

from __future__ import annotations

from typing import Any

from dataqueue.backends.base_async import AsyncBackend
from dataqueue.errors import ConfigurationError
from dataqueue.hooks import emitter_of
from dataqueue.supervisor_async import AsyncSupervisor
from dataqueue.supervisor_plan import SupervisorOptions, SupervisorResult, parse_supervisor_options
from dataqueue.supervisor_sync import Supervisor

__all__ = [
    "AsyncSupervisor",
    "Supervisor",
    "SupervisorOptions",
    "SupervisorResult",
    "create_supervisor",
    "parse_supervisor_options",
]


def create_supervisor(queue: Any, **options: Any) -> Supervisor | AsyncSupervisor:
    """Build the supervisor for ``queue`` (``AsyncSupervisor`` for an ``AsyncJobQueue``).

    Options: ``interval`` 60 s, ``stuck_jobs_timeout_minutes`` 10, ``cleanup_jobs_days_to_keep``
    30 and ``cleanup_events_days_to_keep`` 30 (0 disables), ``cleanup_batch_size`` 1000,
    ``reclaim_stuck_jobs`` True, ``expire_timed_out_tokens`` True, ``on_error``, ``verbose``.
    """
    opts = parse_supervisor_options(**options)
    backend = getattr(queue, "_backend", None)
    if backend is None:
        raise ConfigurationError("create_supervisor needs a queue from init_job_queue")
    hooks = emitter_of(queue)
    if isinstance(backend, AsyncBackend):
        return AsyncSupervisor(backend, hooks, opts)
    return Supervisor(backend, hooks, opts)
