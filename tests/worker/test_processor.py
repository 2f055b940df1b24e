"""Processor behaviour on the real backends (inventory §12.3 plus SPEC §10 fixes)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from dataqueue.errors import ConfigurationError

from ._helpers import Gauge, start_processing, wait_status, wait_until


def test_handler_success_stores_output(q: Any, make_processor: Any) -> None:
    job_id = q.add_job("greet", {"name": "Ada"})
    proc = make_processor({"greet": lambda payload, ctx: {"hello": payload["name"]}})
    assert proc.start() == 1
    job = q.get_job(job_id)
    assert job.status.value == "completed"
    assert job.output == {"hello": "Ada"}
    assert job.attempts == 1


def test_async_handler_success(q: Any, make_processor: Any) -> None:
    async def handler(payload: Any, ctx: Any) -> Any:
        await asyncio.sleep(0)
        await ctx.set_progress(40)
        return [payload, ctx.job_id, ctx.attempt]

    job_id = q.add_job("a", 7)
    make_processor({"a": handler}).start()
    job = q.get_job(job_id)
    assert job.status.value == "completed"
    assert job.output == [7, job_id, 1]
    assert job.progress == 40


def test_handler_error_fails_and_retries(q: Any, make_processor: Any) -> None:
    def boom(payload: Any, ctx: Any) -> None:
        raise ValueError("kaboom")

    job_id = q.add_job("boom", {}, max_attempts=3)
    make_processor({"boom": boom}).start()
    job = q.get_job(job_id)
    assert job.status.value == "failed"
    assert job.failure_reason.value == "handler_error"
    assert job.error_history[-1]["message"] == "kaboom"
    assert job.next_attempt_at is not None


def test_dead_letter_on_exhaustion(q: Any, make_processor: Any) -> None:
    def boom(payload: Any, ctx: Any) -> None:
        raise RuntimeError("nope")

    job_id = q.add_job("boom", {"a": 1}, max_attempts=1, dead_letter_job_type="dlq")
    make_processor({"boom": boom}, job_type="boom").start()
    job = q.get_job(job_id)
    assert job.status.value == "failed"
    assert job.dead_letter_job_id is not None
    dead = q.get_job(job.dead_letter_job_id)
    assert dead.job_type == "dlq"
    assert dead.payload["original_payload"] == {"a": 1}
    assert dead.payload["failure"]["reason"] == "handler_error"
    assert dead.payload["failure"]["message"] == "nope"


def test_missing_handler_fails_with_no_handler(q: Any, make_processor: Any) -> None:
    job_id = q.add_job("unknown", {}, max_attempts=1)
    make_processor({"other": lambda p, c: None}, claim_all_types=True).start()
    job = q.get_job(job_id)
    assert job.status.value == "failed"
    assert job.failure_reason.value == "no_handler"
    assert "unknown" in job.error_history[-1]["message"]


def test_start_processes_a_batch_and_filters_job_types(q: Any, make_processor: Any) -> None:
    a = q.add_job("a", {})
    b = q.add_job("b", {})
    c = q.add_job("c", {})
    handlers = {t: (lambda p, c: None) for t in "abc"}
    assert make_processor(handlers, job_type="a").start() == 1
    assert [q.get_job(i).status.value for i in (a, b, c)] == ["completed", "pending", "pending"]
    assert make_processor(handlers, job_type=["b", "c"]).start() == 2
    assert [q.get_job(i).status.value for i in (b, c)] == ["completed", "completed"]
    assert make_processor(handlers).start() == 0


def test_claims_only_the_types_it_has_handlers_for(q: Any, make_processor: Any) -> None:
    """By default a processor leaves job types it cannot run to the workers that can."""
    mine = q.add_job("mine", {})
    theirs = q.add_job("theirs", {}, max_attempts=1)
    proc = make_processor({"mine": lambda p, c: "ok"})
    assert proc.claim_types == ("mine",)
    assert proc.start() == 1
    assert proc.start() == 0
    assert q.get_job(mine).status.value == "completed"
    other = q.get_job(theirs)
    assert (other.status.value, other.attempts, list(other.error_history)) == ("pending", 0, [])
    # job_type= narrows (even to a type without a handler: asked for explicitly)
    assert make_processor({"mine": lambda p, c: None}, job_type="x").claim_types == ("x",)
    # claim_all_types=True: everything, and no handler means no_handler as before
    every = make_processor({"mine": lambda p, c: None}, claim_all_types=True)
    assert every.claim_types is None
    assert every.start() == 1
    failed = q.get_job(theirs)
    assert (failed.status.value, failed.failure_reason.value) == ("failed", "no_handler")


def _gauge_handler(gauge: Gauge, seconds: float = 0.15) -> Any:
    def handler(payload: Any, ctx: Any) -> None:
        with gauge:
            time.sleep(seconds)

    return handler


@pytest.mark.parametrize(
    ("options", "jobs", "limit"),
    [({}, 6, 3), ({"concurrency": 2}, 6, 2), ({"concurrency": 1}, 3, 1)],
    ids=["default-3", "custom-2", "sequential"],
)
def test_concurrency_limit_in_one_shot(
    q: Any, make_processor: Any, options: dict[str, Any], jobs: int, limit: int
) -> None:
    gauge = Gauge()
    q.add_jobs([{"job_type": "w", "payload": {}} for _ in range(jobs)])
    assert make_processor({"w": _gauge_handler(gauge)}, **options).start() == jobs
    assert gauge.peak == limit


def test_one_shot_never_claims_more_than_batch_size(q: Any, make_processor: Any) -> None:
    gauge = Gauge()
    q.add_jobs([{"job_type": "w", "payload": {}} for _ in range(5)])
    assert make_processor({"w": _gauge_handler(gauge)}, batch_size=2, concurrency=5).start() == 2
    assert gauge.peak <= 2


@pytest.mark.parametrize("bad", [0, 1.5, -1, True])
def test_invalid_group_concurrency(q: Any, bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="group_concurrency"):
        q.create_processor({"a": lambda p, c: None}, group_concurrency=bad)


def test_continuous_pool_refills_slots_behind_a_slow_job(q: Any, make_processor: Any) -> None:
    release = threading.Event()
    gauge = Gauge()

    def slow(payload: Any, ctx: Any) -> None:
        with gauge:
            release.wait(20)

    def fast(payload: Any, ctx: Any) -> None:
        with gauge:
            time.sleep(0.02)

    slow_id = q.add_job("slow", {}, group={"id": "g"})
    fast_ids = q.add_jobs(
        [{"job_type": "fast", "payload": {}, "group": {"id": "g"}} for _ in range(5)]
    )
    proc = make_processor({"slow": slow, "fast": fast}, concurrency=4, group_concurrency=2)
    proc.start_in_background()
    try:
        for job_id in fast_ids:
            wait_status(q, job_id, "completed")
        assert q.get_job(slow_id).status.value == "processing"
        assert gauge.peak <= 2
    finally:
        release.set()
    wait_status(q, slow_id, "completed")


def test_run_in_background_stop_and_is_running(q: Any, make_processor: Any) -> None:
    proc = make_processor({"t": lambda p, c: p})
    assert not proc.is_running()
    proc.start_in_background()
    proc.start_in_background()  # idempotent
    wait_until(proc.is_running)
    job_id = q.add_job("t", 1)
    wait_status(q, job_id, "completed", timeout=5)
    proc.stop_and_drain(5)
    assert not proc.is_running()
    later = q.add_job("t", 2)
    time.sleep(0.5)
    assert q.get_job(later).status.value == "pending"


def test_idle_worker_picks_up_new_jobs_quickly(q: Any, make_processor: Any) -> None:
    # poll_interval is long: pickup must come from the backend's wake-up, not polling.
    proc = make_processor({"t": lambda p, c: None}, poll_interval=30.0)
    proc.start_in_background()
    time.sleep(0.3)
    job_id = q.add_job("t", {})
    wait_status(q, job_id, "completed", timeout=5)


def test_idle_worker_wakes_when_delayed_work_comes_due(q: Any, make_processor: Any) -> None:
    # poll_interval is long: a future run_at, a retry delay and a time wait must each be
    # picked up when due by the backend's timer to the earliest not-yet-due job.
    from datetime import datetime, timedelta, timezone

    runs: list[tuple[str, int]] = []

    def flaky(payload: Any, ctx: Any) -> str:
        runs.append(("flaky", ctx.attempt))
        if ctx.attempt == 1:
            raise ValueError("once")
        return "retried"

    def napper(payload: Any, ctx: Any) -> str:
        ctx.wait_for(seconds=1)
        return "rested"

    handlers = {"t": lambda p, c: "due", "flaky": flaky, "nap": napper}
    proc = make_processor(handlers, poll_interval=30.0)
    proc.start_in_background()
    time.sleep(0.3)
    soon = datetime.now(timezone.utc) + timedelta(seconds=1)
    delayed = q.add_job("t", {}, run_at=soon)
    assert wait_status(q, delayed, "completed", timeout=6).output == "due"
    retried = q.add_job("flaky", {}, max_attempts=2, retry_delay=1, retry_backoff=False)
    assert wait_status(q, retried, "completed", timeout=6).output == "retried"
    napping = q.add_job("nap", {})
    assert wait_status(q, napping, "completed", timeout=6).output == "rested"


def test_events_and_hooks(q: Any, make_processor: Any) -> None:
    seen: list[tuple[str, Any]] = []
    for event in ("job:processing", "job:completed", "job:failed", "job:progress", "job:output"):
        q.on(event, lambda payload, e=event: seen.append((e, payload)))

    def handler(payload: Any, ctx: Any) -> None:
        ctx.set_progress(50)
        ctx.set_output({"partial": True})

    ok = q.add_job("ok", {})
    bad = q.add_job("bad", {}, max_attempts=1)
    make_processor({"ok": handler, "bad": lambda p, c: 1 / 0}).start()
    names = [name for name, _ in seen]
    assert names.count("job:processing") == 2
    assert ("job:progress", {"job_id": ok, "progress": 50}) in seen
    assert ("job:output", {"job_id": ok, "output": {"partial": True}}) in seen
    assert ("job:completed", {"job_id": ok, "job_type": "ok"}) in seen
    failed = [p for name, p in seen if name == "job:failed"]
    assert len(failed) == 1
    assert failed[0]["job_id"] == bad
    assert failed[0]["will_retry"] is False
    assert isinstance(failed[0]["error"], ZeroDivisionError)
    assert q.get_job(ok).output == {"partial": True}  # set_output wins over return None


def test_will_retry_is_exact(q: Any, make_processor: Any) -> None:
    flags: list[bool] = []
    q.on("job:failed", lambda p: flags.append(p["will_retry"]))
    job_id = q.add_job("bad", {}, max_attempts=2, retry_delay=0, retry_backoff=False)

    def bad(payload: Any, ctx: Any) -> None:
        raise ValueError("x")

    proc = make_processor({"bad": bad})
    proc.start_in_background()
    wait_until(lambda: len(flags) == 2)
    assert flags == [True, False]
    assert q.get_job(job_id).status.value == "failed"
    assert q.get_job(job_id).attempts == 2


def test_will_retry_is_exact_for_no_handler(q: Any, make_processor: Any) -> None:
    """SPEC §10.6: a no_handler failure schedules a retry while attempts remain, and says so."""
    flags: list[bool] = []
    q.on("job:failed", lambda p: flags.append(p["will_retry"]))
    job_id = q.add_job("unknown", {}, max_attempts=2, retry_delay=0, retry_backoff=False)
    proc = make_processor({"other": lambda p, c: None}, claim_all_types=True)
    proc.start_in_background()
    wait_until(lambda: len(flags) == 2)
    assert flags == [True, False]
    job = q.get_job(job_id)
    assert (job.status.value, job.failure_reason.value, job.attempts) == ("failed", "no_handler", 2)


def test_output_semantics(q: Any, make_processor: Any) -> None:
    def returns_none(payload: Any, ctx: Any) -> None:
        ctx.set_output("kept")

    def set_then_return(payload: Any, ctx: Any) -> str:
        ctx.set_output("explicit")
        return "returned"

    a = q.add_job("none", {})
    b = q.add_job("both", {})
    c = q.add_job("scalar", {})
    d = q.add_job("null", {})
    make_processor(
        {
            "none": returns_none,
            "both": set_then_return,
            "scalar": lambda p, c: 42,
            "null": lambda p, c: None,
        },
        batch_size=10,
    ).start()
    assert q.get_job(a).output == "kept"
    assert q.get_job(b).output == "explicit"
    assert q.get_job(c).output == 42
    assert q.get_job(d).output is None


def test_listener_and_on_error_exceptions_do_not_change_outcomes(
    q: Any, make_processor: Any
) -> None:
    errors: list[BaseException] = []

    def bad_listener(payload: Any) -> None:
        raise RuntimeError("listener broke")

    for event in ("job:processing", "job:completed", "job:failed"):
        q.on(event, bad_listener)
    q.on("error", errors.append)

    def bad_on_error(exc: BaseException) -> None:
        raise RuntimeError("on_error broke")

    ok = q.add_job("ok", {})
    bad = q.add_job("bad", {}, max_attempts=1)
    proc = make_processor(
        {"ok": lambda p, c: "fine", "bad": lambda p, c: 1 / 0}, on_error=bad_on_error
    )
    assert proc.start() == 2
    assert q.get_job(ok).status.value == "completed"
    assert q.get_job(ok).output == "fine"
    assert q.get_job(bad).status.value == "failed"
    assert any("listener broke" in str(e) for e in errors)


def test_set_progress_persists_rounds_and_validates(q: Any, make_processor: Any) -> None:
    problems: list[str] = []

    def handler(payload: Any, ctx: Any) -> None:
        ctx.set_progress(33.6)
        for bad in (-1, 101, "50"):
            try:
                ctx.set_progress(bad)
            except ValueError as exc:
                problems.append(str(exc))

    job_id = q.add_job("p", {})
    make_processor({"p": handler}).start()
    assert q.get_job(job_id).progress == 34
    assert len(problems) == 3
    assert "between 0 and 100" in problems[0]


class TestDependencies:
    def test_chain_and_diamond_run_in_order(self, q: Any, make_processor: Any) -> None:
        lock = threading.Lock()
        spans: dict[int, list[float]] = {}

        def handler(payload: Any, ctx: Any) -> None:
            with lock:
                spans[ctx.job_id] = [time.monotonic()]
            time.sleep(0.05)
            with lock:
                spans[ctx.job_id].append(time.monotonic())

        a = q.add_job("t", {"n": "a"})
        b = q.add_job("t", {"n": "b"}, depends_on={"job_ids": [a]})
        c = q.add_job("t", {"n": "c"}, depends_on={"job_ids": [b]})
        top = q.add_job("t", {"n": "top"})
        left = q.add_job("t", {"n": "left"}, depends_on={"job_ids": [top]})
        right = q.add_job("t", {"n": "right"}, depends_on={"job_ids": [top]})
        bottom = q.add_job("t", {"n": "bottom"}, depends_on={"job_ids": [left, right]})
        make_processor({"t": handler}, concurrency=10).start_in_background()
        for job_id in (c, bottom):
            wait_status(q, job_id, "completed")
        for before, after in [
            (a, b),
            (b, c),
            (top, left),
            (top, right),
            (left, bottom),
            (right, bottom),
        ]:
            assert spans[before][1] <= spans[after][0], (before, after)

    def test_tag_drain_barrier(self, q: Any, make_processor: Any) -> None:
        lock = threading.Lock()
        finished: list[int] = []
        barrier_started_after: list[int] = []

        def work(payload: Any, ctx: Any) -> None:
            time.sleep(0.05 * payload["n"])
            with lock:
                finished.append(ctx.job_id)

        def barrier(payload: Any, ctx: Any) -> None:
            with lock:
                barrier_started_after.extend(finished)

        workers = q.add_jobs(
            [{"job_type": "work", "payload": {"n": n}, "tags": ["batch-1", "x"]} for n in range(5)]
        )
        gate = q.add_job("barrier", {}, depends_on={"tags": ["batch-1"]})
        make_processor({"work": work, "barrier": barrier}, concurrency=10).start_in_background()
        wait_status(q, gate, "completed")
        assert sorted(barrier_started_after) == sorted(workers)

    def test_terminal_failure_cascades_retryable_does_not(
        self, q: Any, make_processor: Any
    ) -> None:
        attempts: dict[int, int] = {}

        def flaky(payload: Any, ctx: Any) -> None:
            attempts[ctx.job_id] = ctx.attempt
            if payload["fail_until"] >= ctx.attempt:
                raise RuntimeError("not yet")

        retried = q.add_job(
            "flaky", {"fail_until": 1}, max_attempts=2, retry_delay=0, retry_backoff=False
        )
        after_retried = q.add_job("noop", {}, depends_on={"job_ids": [retried]})
        doomed = q.add_job("flaky", {"fail_until": 5}, max_attempts=1)
        after_doomed = q.add_job("noop", {}, depends_on={"job_ids": [doomed]})
        make_processor({"flaky": flaky, "noop": lambda p, c: None}).start_in_background()
        wait_status(q, after_retried, "completed")
        assert attempts[retried] == 2
        assert wait_status(q, after_doomed, "cancelled").status.value == "cancelled"
        assert q.get_job(doomed).status.value == "failed"


def test_processor_for_a_queue_on_a_caller_pool_or_client(
    backend_name: str, native: Any, queue_factory: Any, make_processor: Any
) -> None:
    if backend_name == "postgres":
        queue = queue_factory(url=None, pool=native.pg_pool())
    else:
        queue = queue_factory(url=None, client=native.redis_client())
    job_id = queue.add_job("t", 1)
    assert make_processor({"t": lambda p, c: p + 1}, queue=queue).start() == 1
    assert queue.get_job(job_id).output == 2


def test_invalid_options_raise(q: Any) -> None:
    for options in (
        {"concurrency": 0},
        {"batch_size": -1},
        {"poll_interval": 0},
        {"job_type": []},
        {"lease_seconds": "x"},
    ):
        with pytest.raises(ConfigurationError):
            q.create_processor({"a": lambda p, c: None}, **options)
    with pytest.raises(ConfigurationError):
        q.create_processor({"a": "not callable"})


def test_processor_enqueues_due_cron_jobs(q: Any, make_processor: Any) -> None:
    ran: list[int] = []
    q.add_cron_job("every-second", "* * * * * *", "tick", {"k": 1})
    proc = make_processor({"tick": lambda p, c: ran.append(c.job_id)}, poll_interval=0.2)
    proc.start_in_background()
    wait_until(lambda: len(ran) >= 2, timeout=10)
    proc.stop_and_drain(5)
    assert len(set(ran)) == len(ran)
    schedule = q.get_cron_job_by_name("every-second")
    assert schedule.last_job_id in ran or q.get_job(schedule.last_job_id) is not None


def test_cron_occurrence_enqueued_once_with_many_processors(q: Any, make_processor: Any) -> None:
    q.add_cron_job("every-second", "* * * * * *", "tick", {})
    procs = [make_processor({"tick": lambda p, c: None}, poll_interval=0.1) for _ in range(3)]
    for proc in procs:
        proc.start_in_background()
    time.sleep(2.5)
    for proc in procs:
        proc.stop_and_drain(5)
    jobs = q.get_jobs({"job_type": "tick"}, limit=100)
    # One job per elapsed second at most (2.5 s → 2 or 3 occurrences, never one per processor).
    assert 1 <= len(jobs) <= 4


def test_heartbeat_keeps_a_long_job_from_being_reclaimed(q: Any, make_processor: Any) -> None:
    runs: list[int] = []

    def long(payload: Any, ctx: Any) -> str:
        runs.append(ctx.job_id)
        time.sleep(2.5)
        return "done"

    job_id, _ = start_processing(q, make_processor, long, lease_seconds=1.0)
    reclaimed = 0
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        reclaimed += q.reclaim_stuck_jobs()
        time.sleep(0.2)
    assert reclaimed == 0
    assert wait_status(q, job_id, "completed").output == "done"
    assert runs == [job_id]


def test_stop_and_drain_leaves_unfinished_jobs_for_reclaim(q: Any, make_processor: Any) -> None:
    saw_cancel: list[bool] = []

    def stubborn(payload: Any, ctx: Any) -> None:
        saw_cancel.append(ctx.cancelled.wait_blocking(3))
        time.sleep(0.5)

    job_id, proc = start_processing(q, make_processor, stubborn, lease_seconds=1.0)
    proc.stop_and_drain(0.2)
    assert not proc.is_running()
    wait_until(lambda: saw_cancel == [True], timeout=5)
    time.sleep(0.6)  # the handler returned, but its result was abandoned
    assert q.get_job(job_id).status.value == "processing"
    time.sleep(1.0)  # no heartbeat: the lease runs out
    assert q.reclaim_stuck_jobs() == 1
    assert q.get_job(job_id).status.value == "pending"


def test_transient_claim_errors_are_retried_and_reported(q: Any, make_processor: Any) -> None:
    from _bridge import unwrap
    from dataqueue.errors import BackendError

    reported: list[BaseException] = []
    proc = make_processor({"t": lambda p, c: "ok"}, on_error=reported.append)
    proc.start_in_background()
    wait_until(proc.is_running)
    backend = unwrap(proc)._engine.backend
    original = backend.claim_jobs
    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise BackendError("database went away")
        return await original(*args, **kwargs)

    backend.claim_jobs = flaky
    job_id = q.add_job("t", {})
    assert wait_status(q, job_id, "completed").output == "ok"
    assert proc.is_running()
    assert [str(e) for e in reported[:3]] == ["database went away"] * 3


def test_a_fenced_off_worker_cannot_finish_the_job(q: Any, make_processor: Any) -> None:
    release = threading.Event()
    completed: list[int] = []
    q.on("job:completed", lambda p: completed.append(p["job_id"]))

    def slow(payload: Any, ctx: Any) -> str:
        release.wait(20)
        return "stale"

    job_id, first = start_processing(q, make_processor, slow, concurrency=1)
    assert q.retry_job(job_id)  # SPEC §10.1: a processing job may be retried
    assert make_processor({"j": lambda p, c: "fresh"}).start() == 1
    assert q.get_job(job_id).output == "fresh"
    release.set()
    first.stop_and_drain(5)
    job = q.get_job(job_id)
    assert job.status.value == "completed"
    assert job.output == "fresh"
    assert completed == [job_id]


def test_restart_after_stop_still_wakes_on_new_jobs(q: Any, make_processor: Any) -> None:
    errors: list[BaseException] = []
    proc = make_processor({"t": lambda p, c: None}, poll_interval=30.0, on_error=errors.append)
    for _ in range(2):
        proc.start_in_background()
        wait_until(proc.is_running)
        time.sleep(0.2)
        job_id = q.add_job("t", {})
        wait_status(q, job_id, "completed", timeout=5)
        proc.stop_and_drain(5)
    assert errors == []
