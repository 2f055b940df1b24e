"""Timeouts, prolong, on_timeout and force-kill (inventory §12.3, SPEC §10.9)."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from dataqueue.embedded import _pid_alive

from . import handlers_forcekill


@pytest.fixture
def run_one(q: Any, make_processor: Any) -> Any:
    """``run_one(handler, **job_options)``: one job with those options, through one round of
    a processor; returns its record afterwards."""

    def run(handler: Any, **options: Any) -> Any:
        job_id = q.add_job("p", {}, **options)
        make_processor({"p": handler}).start()
        return q.get_job(job_id)

    return run


def test_timeout_fails_with_reason_timeout(run_one: Any) -> None:
    async def slow(payload: Any, ctx: Any) -> None:
        await asyncio.sleep(10)

    started = time.monotonic()
    job = run_one(slow, timeout_ms=200, max_attempts=1)
    assert time.monotonic() - started < 8
    assert job.status.value == "failed"
    assert job.failure_reason.value == "timeout"
    assert job.error_history[-1]["message"] == "Job timed out after 200 ms"


def test_sync_handler_timeout_sets_cancelled(run_one: Any) -> None:
    seen: list[bool] = []

    def slow(payload: Any, ctx: Any) -> None:
        seen.append(ctx.cancelled.wait_blocking(10))

    job = run_one(slow, timeout_ms=200, max_attempts=1)
    assert job.failure_reason.value == "timeout"
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen == [True]


def test_fast_handler_with_timeout_completes(run_one: Any) -> None:
    assert run_one(lambda p, c: "done", timeout_ms=5000).status.value == "completed"


def test_prolong_extends_the_deadline(q: Any, run_one: Any) -> None:
    def handler(payload: Any, ctx: Any) -> str:
        time.sleep(0.15)
        ctx.prolong(1000)
        time.sleep(0.3)  # past the original 300 ms in total, inside the extension
        return "ok"

    job = run_one(handler, timeout_ms=300, max_attempts=1)
    assert job.status.value == "completed"
    assert "prolonged" in [e.event_type.value for e in q.get_job_events(job.id)]


def test_prolong_without_ms_rearms_original_timeout(run_one: Any) -> None:
    async def handler(payload: Any, ctx: Any) -> str:
        for _ in range(4):
            await asyncio.sleep(0.15)
            await ctx.prolong()
        return "ok"

    job = run_one(handler, timeout_ms=300, max_attempts=1)
    assert job.status.value == "completed"


def test_without_prolong_times_out(run_one: Any) -> None:
    async def handler(payload: Any, ctx: Any) -> str:
        await asyncio.sleep(0.6)
        return "late"

    job = run_one(handler, timeout_ms=300, max_attempts=1)
    assert job.failure_reason.value == "timeout"


def test_prolong_without_timeout_renews_the_lease(q: Any, run_one: Any) -> None:
    def handler(payload: Any, ctx: Any) -> str:
        ctx.prolong(60_000)
        return "ok"

    job = run_one(handler)
    assert job.status.value == "completed"
    assert "prolonged" in [e.event_type.value for e in q.get_job_events(job.id)]


def test_on_timeout_extends_repeatedly(run_one: Any) -> None:
    calls: list[int] = []

    async def handler(payload: Any, ctx: Any) -> str:
        def extend() -> int | None:
            calls.append(1)
            return 200 if len(calls) < 3 else None

        ctx.on_timeout(extend)
        await asyncio.sleep(0.5)  # 200 ms + two 200 ms extensions > 500 ms
        return "finished"

    job = run_one(handler, timeout_ms=200, max_attempts=1)
    assert job.status.value == "completed"
    assert len(calls) == 2


def test_on_timeout_without_return_times_out(run_one: Any) -> None:
    def handler(payload: Any, ctx: Any) -> str:
        ctx.on_timeout(lambda: None)
        time.sleep(0.6)
        return "late"

    job = run_one(handler, timeout_ms=200, max_attempts=1)
    assert job.failure_reason.value == "timeout"
    assert "200 ms" in job.error_history[-1]["message"]


def test_on_timeout_progress_based(run_one: Any) -> None:
    def handler(payload: Any, ctx: Any) -> str:
        state = {"progress": 0}
        ctx.on_timeout(lambda: 300 if state["progress"] < 100 else None)
        for pct in (25, 50, 75, 100):
            time.sleep(0.1)
            state["progress"] = pct
            ctx.set_progress(pct)
        return "done"

    job = run_one(handler, timeout_ms=150, max_attempts=1)
    assert job.status.value == "completed"
    assert job.progress == 100


class TestForceKill:
    def test_really_kills_the_handler_process(
        self, q: Any, make_processor: Any, tmp_path: Path
    ) -> None:
        pid_file = tmp_path / "pid"
        job_id = q.add_job(
            "stubborn",
            {"pid_file": str(pid_file)},
            timeout_ms=1500,
            force_kill_on_timeout=True,
            max_attempts=1,
        )
        make_processor({"stubborn": handlers_forcekill.stubborn}).start()
        job = q.get_job(job_id)
        assert job.status.value == "failed"
        assert job.failure_reason.value == "timeout"
        assert "timed out" in job.error_history[-1]["message"]
        pid = int(pid_file.read_text())
        assert pid != os.getpid()
        assert not _pid_alive(pid)

    def test_completes_a_fast_handler(self, q: Any, make_processor: Any) -> None:
        job_id = q.add_job("quick", {"n": 21}, timeout_ms=30_000, force_kill_on_timeout=True)
        make_processor({"quick": handlers_forcekill.quick}).start()
        job = q.get_job(job_id)
        assert job.status.value == "completed", job.error_history
        assert job.output["doubled"] == 42
        assert job.output["job_id"] == job_id
        assert job.output["pid"] != os.getpid()
        assert job.progress == 50

    def test_async_handler_and_errors(self, q: Any, make_processor: Any) -> None:
        ok = q.add_job("qa", {}, timeout_ms=30_000, force_kill_on_timeout=True)
        bad = q.add_job("r", {}, timeout_ms=30_000, force_kill_on_timeout=True, max_attempts=1)
        make_processor(
            {"qa": handlers_forcekill.quick_async, "r": handlers_forcekill.raises}
        ).start()
        assert q.get_job(ok).output == "async-ok"
        job = q.get_job(bad)
        assert job.failure_reason.value == "handler_error"
        assert "child says no" in job.error_history[-1]["message"]

    def test_retry_policy_sees_the_childs_exception(self, q: Any, make_processor: Any) -> None:
        """NonRetryable and Retry(after=...) raised in the child steer the retry as in the
        worker itself; an exception that cannot be rebuilt is reported by type and message."""
        fk = {"timeout_ms": 30_000, "force_kill_on_timeout": True, "max_attempts": 3}
        rejected = q.add_job("rejects", {}, **fk)
        delayed = q.add_job("later", {}, retry_delay=1, **fk)
        odd = q.add_job("odd", {}, **fk)
        before = datetime.now(timezone.utc)
        make_processor(
            {
                "rejects": handlers_forcekill.rejects,
                "later": handlers_forcekill.later,
                "odd": handlers_forcekill.raises_unpicklable,
            }
        ).start()
        job = q.get_job(rejected)
        assert job.status.value == "failed" and job.next_attempt_at is None and job.attempts == 1
        assert job.error_history[-1]["message"] == "card declined"
        assert "in the handler process" in job.error_history[-1]["traceback"]
        job = q.get_job(delayed)
        assert job.status.value == "failed" and job.attempts == 1
        assert 590 < (job.next_attempt_at - before).total_seconds() < 610
        job = q.get_job(odd)
        assert job.next_attempt_at is not None  # retried as a plain handler error
        assert job.error_history[-1]["message"] == "Unpicklable: 1 and 2"

    def test_rejects_non_importable_handler(self, q: Any, make_processor: Any) -> None:
        job_id = q.add_job("l", {}, timeout_ms=5000, force_kill_on_timeout=True, max_attempts=1)
        make_processor({"l": lambda p, c: None}).start()
        job = q.get_job(job_id)
        assert job.status.value == "failed"
        assert "importable" in job.error_history[-1]["message"]


@pytest.mark.parametrize("timeout_ms", [None])
def test_force_kill_without_timeout_runs_normally(run_one: Any, timeout_ms: Any) -> None:
    assert run_one(lambda p, c: os.getpid(), force_kill_on_timeout=True).output == os.getpid()


def test_on_timeout_combined_with_prolong(run_one: Any) -> None:
    extensions: list[int] = []

    async def handler(payload: Any, ctx: Any) -> str:
        ctx.on_timeout(lambda: extensions.append(1) or (300 if len(extensions) < 2 else None))
        await asyncio.sleep(0.15)
        await ctx.prolong(300)  # re-armed before the first deadline: no callback yet
        await asyncio.sleep(0.4)  # past the prolonged deadline: the callback extends once
        return "ok"

    job = run_one(handler, timeout_ms=200, max_attempts=1)
    assert job.status.value == "completed"
    assert len(extensions) == 1


def test_async_handler_sees_cancelled_on_timeout(run_one: Any) -> None:
    observed: list[bool] = []

    async def handler(payload: Any, ctx: Any) -> None:
        try:
            await asyncio.sleep(10)
        finally:
            observed.append(ctx.cancelled.is_set())

    job = run_one(handler, timeout_ms=200, max_attempts=1)
    assert job.failure_reason.value == "timeout"
    assert observed == [True]
