"""The ``ctx`` handed to job handlers; the implementation lives in ``dataqueue.worker``."""

from dataqueue.worker.context import AsyncJobContext, CancelToken, JobContext, WaitSignal
from dataqueue.worker.forcekill import ForceKillContext

__all__ = ["AsyncJobContext", "CancelToken", "ForceKillContext", "JobContext", "WaitSignal"]
