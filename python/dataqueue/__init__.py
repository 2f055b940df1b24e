"""dataqueue: a job queue for PostgreSQL or Redis with job dependencies, on a Rust core.

Start with :func:`init_job_queue` (blocking) or :func:`init_async_job_queue` (asyncio)::

    from dataqueue import init_job_queue, batch_dep_ref, DependsOn

    q = init_job_queue("postgresql://localhost/app")   # or "redis://localhost:6379/0"
    q.migrate()
    first = q.add_job("fetch", {"url": "https://example.com"})
    q.add_job("parse", {"source": first}, depends_on=DependsOn(job_ids=[first]))
"""

import logging

from dataqueue.errors import *  # noqa: F403
from dataqueue.errors import __all__ as _error_names
from dataqueue.factory import init_async_job_queue, init_job_queue
from dataqueue.hooks import (
    EVENTS,
    EventEmitter,
    JobAddedEvent,
    JobFailedEvent,
    JobIdEvent,
    JobOutputEvent,
    JobProgressEvent,
    JobStatusEvent,
)
from dataqueue.options import (
    DependsOn,
    JobFilters,
    JobGroup,
    JobOptions,
    JobSpec,
    batch_dep_ref,
)
from dataqueue.queue_async import AsyncJobQueue
from dataqueue.queue_sync import JobQueue
from dataqueue.records import (
    CronScheduleRecord,
    CronStatus,
    FailureReason,
    JobEvent,
    JobEventType,
    JobRecord,
    JobStatus,
    TagQueryMode,
    TokenStatus,
    WaitpointRecord,
)
from dataqueue.tasks import AsyncJobHandle, AsyncTask, JobHandle, RetryPolicy, Task, TaskRegistry
from dataqueue.worker.context import AsyncJobContext, Handler, JobContext

__version__ = "0.1.0"

# A library logs, the application decides where to: silent unless logging is configured
# (``dataqueue worker`` shows INFO). Never basicConfig here.
logging.getLogger("dataqueue").addHandler(logging.NullHandler())

__all__ = [
    "JobAddedEvent",
    "JobFailedEvent",
    "JobIdEvent",
    "JobOutputEvent",
    "JobProgressEvent",
    "JobStatusEvent",
    "JobSpec",
    "AsyncJobHandle",
    "AsyncTask",
    "JobHandle",
    "RetryPolicy",
    "Task",
    "TaskRegistry",
    "AsyncJobContext",
    "Handler",
    "JobContext",
    "EVENTS",
    "AsyncJobQueue",
    "CronScheduleRecord",
    "CronStatus",
    "DependsOn",
    "EventEmitter",
    "FailureReason",
    "JobEvent",
    "JobEventType",
    "JobFilters",
    "JobGroup",
    "JobOptions",
    "JobQueue",
    "JobRecord",
    "JobStatus",
    "TagQueryMode",
    "TokenStatus",
    "WaitpointRecord",
    "__version__",
    "batch_dep_ref",
    "init_async_job_queue",
    "init_job_queue",
    *_error_names,
]
