"""dataqueue: a job queue for PostgreSQL or Redis with job dependencies, on a Rust core."""

from dataqueue.errors import *  # noqa: F403
from dataqueue.options import DependsOn, JobGroup, JobOptions, batch_dep_ref
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

__version__ = "0.1.0"
