"""Processors: run job handlers (``queue.create_processor(handlers, **options)``).

Example::

    async def send_email(payload, ctx):          # async: runs on the worker's event loop
        await ctx.set_progress(10)
        msg_id = await ctx.run("send", lambda: smtp_send(payload))   # once per job
        await ctx.wait_for(hours=1)                  # parks the job, frees the slot
        return {"message_id": msg_id}                # stored as the job's output

    def resize(payload, ctx):                        # def: runs in a thread, ctx blocks
        if ctx.cancelled.is_set(): ...
        return None                                  # None keeps any stored output

    processor = queue.create_processor({"send_email": send_email, "resize": resize},
                                       concurrency=10)
    processor.run()                                  # until SIGINT/SIGTERM (graceful)

``JobQueue`` gives a blocking :class:`Processor` (its event loop runs on a private thread; call
``close()`` or use ``with``), ``AsyncJobQueue`` an :class:`AsyncProcessor`. See
``dataqueue.worker.processor`` for the options and ``dataqueue.context`` for ``ctx``.
``force_kill_on_timeout`` jobs run in a child process that is SIGKILLed at the timeout; their
``ctx`` supports ``set_progress``, ``set_output`` and ``run`` only (``dataqueue.worker.forcekill``).
"""

from dataqueue.worker.engine import ProcessorKwargs, ProcessorOptions
from dataqueue.worker.forcekill import HandlerProcessError, JobTimeoutError
from dataqueue.worker.processor import AsyncProcessor, Processor, create_processor

__all__ = [
    "AsyncProcessor",
    "HandlerProcessError",
    "JobTimeoutError",
    "Processor",
    "ProcessorKwargs",
    "ProcessorOptions",
    "create_processor",
]
