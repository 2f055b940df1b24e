"""Processors (``queue.create_processor``); the implementation lives in ``dataqueue.worker``."""

from dataqueue.worker.engine import ProcessorOptions
from dataqueue.worker.forcekill import HandlerProcessError, JobTimeoutError
from dataqueue.worker.processor import AsyncProcessor, Processor, create_processor

__all__ = [
    "AsyncProcessor",
    "HandlerProcessError",
    "JobTimeoutError",
    "Processor",
    "ProcessorOptions",
    "create_processor",
]
