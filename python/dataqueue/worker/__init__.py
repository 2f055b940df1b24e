"""The worker side of dataqueue: processors, the handler context and force-kill execution."""

from dataqueue.worker.context import AsyncJobContext, CancelToken, JobContext, WaitSignal
from dataqueue.worker.forcekill import HandlerProcessError, JobTimeoutError
from dataqueue.worker.processor import AsyncProcessor, Processor, create_processor

__all__ = [
    "AsyncJobContext",
    "AsyncProcessor",
    "CancelToken",
    "HandlerProcessError",
    "JobContext",
    "JobTimeoutError",
    "Processor",
    "WaitSignal",
    "create_processor",
]
