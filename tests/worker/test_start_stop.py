"""Start/stop races of both processor twins on both backends (issue 11).

A stop right after ``start_in_background()`` must take effect whatever the interleaving, and
``is_running()`` must be True as soon as the start returns. Every scenario runs under a
watchdog, so a hang fails the test instead of hanging the run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from _bridge import unwrap
from _processes import ctrl_c, reaped

from ._helpers import FAST, wait_status

CYCLES = 40
GUARD_SECONDS = 90.0


def _guarded(body: Callable[[], None], seconds: float = GUARD_SECONDS) -> None:
    """Run ``body`` on a daemon thread; fail if it does not end within ``seconds``."""
    errors: list[BaseException] = []

    def main() -> None:
        try:
            body()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"start/stop cycles hung (still running after {seconds:.0f}s)")
    if errors:
        raise errors[0]


def test_fast_start_stop_cycles_never_lose_a_stop(q: Any, make_processor: Any) -> None:
    job_ids = [q.add_job("t", {"i": i}) for i in range(10)]
    proc = make_processor({"t": lambda payload, ctx: payload["i"]})
    ends = ("stop", "stop_and_drain", "restart", "close")

    def cycles() -> None:
        for i in range(CYCLES):
            proc.start_in_background()
            assert proc.is_running(), f"cycle {i}: not running right after start"
            end = ends[i % len(ends)]
            if end == "stop":
                proc.stop()
                proc.stop_and_drain(5)
            elif end == "restart":  # a start while the stopped loop still winds down
                proc.stop()
                proc.start_in_background()
                assert proc.is_running(), f"cycle {i}: restart not running"
                proc.stop_and_drain(5)
            elif end == "close" and hasattr(proc, "close"):
                proc.close(5)
            else:
                proc.stop_and_drain(5)
            assert not proc.is_running(), f"cycle {i} ({end}): still running after the stop"

    _guarded(cycles)
    # The cycles did real work and left nothing behind: one last run finishes the rest.
    proc.start_in_background()
    for job_id in job_ids:
        wait_status(q, job_id, "completed")
    proc.stop_and_drain(5)
    assert not proc.is_running()


def test_stop_before_the_loop_ever_ran(
    twin: str, q: Any, make_processor: Any, loop_thread: Any
) -> None:
    """The tightest interleaving: start and stop with no chance for the loop to take a step
    in between (on the async twin both calls happen in one callback of the event loop)."""
    proc = make_processor({"t": lambda payload, ctx: None})
    if twin == "sync":

        def cycles() -> None:
            for _ in range(CYCLES):
                proc.start_in_background()
                proc.stop()
                proc.stop_and_drain(5)
                assert not proc.is_running()

        _guarded(cycles)
        return
    target = unwrap(proc)

    async def cycles_async() -> None:
        for _ in range(CYCLES):
            target.start_in_background()
            running = target.is_running()
            target.stop()
            await target.stop_and_drain(5)
            assert running and not target.is_running()

    _guarded(lambda: loop_thread.run(cycles_async()))


def _sigterm_once_run_listens() -> Callable[[], None]:
    """Send SIGTERM to this process as soon as the processor's ``run()`` has installed its
    handler (that is, during its start-up), after a short varying delay."""
    fallback = signal.getsignal(signal.SIGTERM)
    delays = iter([0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05] * 4)

    def arm() -> None:
        delay = next(delays)

        def fire() -> None:
            end = time.monotonic() + 10
            while signal.getsignal(signal.SIGTERM) is fallback and time.monotonic() < end:
                time.sleep(0.0002)
            time.sleep(delay)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=fire, daemon=True).start()

    return arm


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
def test_sigterm_during_start_up_stops_run(twin: str, q: Any, storage: Any) -> None:
    from dataqueue import init_async_job_queue

    job_id = q.add_job("t", {})
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # a stray early signal is harmless
    arm = _sigterm_once_run_listens()
    rounds = 12
    hung: list[int] = []
    try:
        if twin == "sync":
            proc = q.create_processor({"t": lambda payload, ctx: None}, **FAST)
            try:
                for i in range(rounds):
                    watchdog = threading.Timer(20, lambda i=i: (hung.append(i), proc.stop()))
                    watchdog.start()
                    arm()
                    proc.run()
                    watchdog.cancel()
                    assert not proc.is_running()
            finally:
                proc.close(5)
        else:

            async def main() -> None:
                aq = init_async_job_queue(
                    storage.url,
                    **({"key_prefix": storage.key_prefix} if storage.key_prefix else {}),
                )
                try:
                    proc = aq.create_processor({"t": lambda payload, ctx: None}, **FAST)
                    loop = asyncio.get_running_loop()
                    for i in range(rounds):
                        watchdog = loop.call_later(20, lambda i=i: (hung.append(i), proc.stop()))
                        arm()
                        await proc.run()
                        watchdog.cancel()
                        assert not proc.is_running()
                finally:
                    await aq.close()

            asyncio.run(main())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not hung, f"a SIGTERM during start-up was lost in round(s) {hung}"
    # Whatever the rounds did, the job is finished or still claimable, never stranded.
    assert q.get_job(job_id).status.value in ("completed", "pending")


_CTRL_C_SCRIPT = """
import asyncio, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # a background test process ignores it
from dataqueue import init_async_job_queue, init_job_queue
url, twin, prefix = sys.argv[1], sys.argv[2], sys.argv[3] or None
opts = {"key_prefix": prefix} if prefix else {}
def ready(payload, ctx):
    print("READY", flush=True)
if twin == "sync":
    q = init_job_queue(url, **opts)
    q.add_job("ready", {})
    p = q.create_processor({"ready": ready}, poll_interval=0.2)
    p.run()
    p.close()
    q.close()
else:
    async def main():
        q = init_async_job_queue(url, **opts)
        await q.add_job("ready", {})
        p = q.create_processor({"ready": ready}, poll_interval=0.2)
        await p.run()
        await q.close()
    asyncio.run(main())
print("STOPPED", flush=True)
"""


def test_ctrl_c_on_run_exits_cleanly(twin: str, storage: Any) -> None:
    """SIGINT on ``run()`` stops it gracefully, with no "Task was destroyed but it is
    pending!" (or any other asyncio complaint) on the way out."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_SCRIPT, storage.url, twin, storage.key_prefix or ""],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with reaped(proc):
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "READY", (line, proc.stderr.read() if proc.stderr else "")
        out, err = ctrl_c(proc, idle=0.3)
    assert proc.returncode == 0, err
    assert "STOPPED" in out
    assert "Task was destroyed" not in err and "Traceback" not in err, err
