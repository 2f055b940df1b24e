"""Faults injected at exact points of a worker's backend calls (issue 10), on both backends.

Each test drives a real processor engine over a real server through ``Faulty`` (see
``_faults.py``): a transient error before or after the server applied a call, a paused
heartbeat, a takeover while a handler still runs. Twins do not matter here (a processor always
runs on an asyncio backend), so these run once per backend.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _connections import kill_named, named
from _variants import selected_backends
from dataqueue import JobLostError, JobStatus, init_async_job_queue, init_job_queue
from dataqueue.hooks import emitter_of
from dataqueue.supervisor import AsyncSupervisor, parse_supervisor_options
from dataqueue.worker.engine import Engine, parse_options

from ._faults import Faulty


@pytest.fixture(params=selected_backends())
def backend_name(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def _run(storage: Any, body: Callable[[Any], Awaitable[None]]) -> None:
    async def main() -> None:
        opts = storage.options()
        url = opts.pop("url")
        q = init_async_job_queue(url, **opts)
        try:
            await body(q)
        finally:
            await q.close()

    asyncio.run(main())


def _engine(q: Any, backend: Any, handlers: dict[str, Any], **options: Any) -> Engine:
    opts = {"poll_interval": 0.2, "lease_seconds": 5.0, **options}
    return Engine(backend, emitter_of(q), handlers, parse_options(**opts))


async def _until(cond: Callable[[], Awaitable[Any] | Any], timeout: float = 15.0) -> Any:
    """Wait until ``cond()`` (a plain or an awaitable result) is truthy; return it."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


async def _stop(engine: Engine, loop_task: asyncio.Task[None]) -> None:
    engine.stop()
    await engine.drain(5)
    await asyncio.gather(loop_task, return_exceptions=True)
    await engine.close()


def test_stale_handler_writes_are_dropped_after_takeover(
    storage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler still running after another worker took its job over and completed it
    (a worker paused past its lease) changes nothing: output, progress, steps are refused."""

    async def body(q: Any) -> None:
        entered, release = asyncio.Event(), asyncio.Event()
        outputs: list[Any] = []
        q.on("job:output", lambda e: outputs.append(e))

        async def handler(payload: Any, ctx: Any) -> str:
            entered.set()
            await release.wait()
            await ctx.set_progress(90)
            await ctx.run("step", lambda: "stale-step")
            await ctx.set_output({"by": "stale"})
            return "stale-result"

        # concurrency 1: the worker cannot claim the job again itself while the run goes on
        engine = _engine(q, q._backend, {"t": handler}, concurrency=1)
        job_id = await q.add_job("t")
        task = asyncio.get_running_loop().create_task(engine.run_loop())
        await asyncio.wait_for(entered.wait(), 10)
        # another worker takes over (a retry fences the first one off, as a reclaim would)
        assert await q.retry_job(job_id)
        [other] = await q._backend.claim_jobs("worker-b", 1, lease=timedelta(seconds=30))
        assert await q._backend.complete_job(job_id, "worker-b", other.lock_version, {"by": "b"})
        done = await q.get_job(job_id)
        release.set()
        await _until(lambda: _idle(engine))
        await _stop(engine, task)
        after = await q.get_job(job_id)
        assert after == done  # nothing the stale run wrote was applied
        assert after.output == {"by": "b"} and after.progress is None
        assert outputs == []

    with caplog.at_level(logging.WARNING, logger="dataqueue.worker"):
        _run(storage, body)
    assert any("dropped" in r.getMessage() for r in caplog.records)


STALE_ACTIONS = (
    "writes", "wait_for", "wait_until", "wait_for_token", "token_done", "prolong", "create_token"
)  # fmt: skip


async def _stale_action(ctx: Any, action: str, tokens: dict[str, str]) -> Any:
    """What a stale handler does once resumed: every kind of write a handler can cause."""
    if action == "writes":
        await ctx.set_progress(90)
        await ctx.run("step", lambda: "stale-step")
        await ctx.set_output({"by": "stale"})
    elif action == "wait_for":
        await ctx.wait_for(seconds=3600)
    elif action == "wait_until":
        await ctx.wait_until(datetime.now(UTC) + timedelta(hours=1))
    elif action in tokens:  # parks on a waiting token / stores a finished one's result
        await ctx.wait_for_token(tokens[action])
    elif action == "create_token":
        with pytest.raises(JobLostError):
            await ctx.create_token()
    else:
        await ctx.prolong(60_000)
    return "stale-result"


def _stale_sync_action(ctx: Any, action: str, tokens: dict[str, str]) -> Any:
    if action == "writes":
        ctx.set_progress(90)
        ctx.run("step", lambda: "stale-step")
        ctx.set_output({"by": "stale"})
    elif action == "wait_for":
        ctx.wait_for(seconds=3600)
    elif action == "wait_until":
        ctx.wait_until(datetime.now(UTC) + timedelta(hours=1))
    elif action in tokens:
        ctx.wait_for_token(tokens[action])
    elif action == "create_token":
        with pytest.raises(JobLostError):
            ctx.create_token()
    else:
        ctx.prolong(60_000)
    return "stale-result"


@pytest.mark.parametrize("twin", ["async", "sync"])
@pytest.mark.parametrize("action", STALE_ACTIONS)
def test_stale_handler_changes_nothing_whatever_it_writes(
    storage: Any, twin: str, action: str
) -> None:
    """The same takeover for each kind of handler write (progress, output, step data, the
    waits, prolong), from a coroutine handler (AsyncJobContext) and from a plain function in
    a worker thread (JobContext): the completed job reads exactly as before, no hook fires."""

    async def body(q: Any) -> None:
        loop = asyncio.get_running_loop()
        entered, release = threading.Event(), threading.Event()
        seen = _collect(q, "job:progress", "job:output", "job:waiting", "job:completed")
        tokens = {"wait_for_token": (await q.create_token()).id}
        tokens["token_done"] = (await q.create_token()).id
        assert await q.complete_token(tokens["token_done"], {"t": 1})

        if twin == "async":

            async def handler(payload: Any, ctx: Any) -> Any:
                entered.set()
                await loop.run_in_executor(None, release.wait)
                return await _stale_action(ctx, action, tokens)

        else:

            def handler(payload: Any, ctx: Any) -> Any:  # type: ignore[misc]
                entered.set()
                release.wait()
                return _stale_sync_action(ctx, action, tokens)

        engine = _engine(q, q._backend, {"t": handler}, concurrency=1)
        job_id = await q.add_job("t")
        task = loop.create_task(engine.run_loop())
        try:
            await _until(lambda: _flag(entered))
            assert await q.retry_job(job_id)
            [other] = await q._backend.claim_jobs("worker-b", 1, lease=timedelta(seconds=30))
            assert await q._backend.complete_job(job_id, "worker-b", other.lock_version, "b")
            done = await q.get_job(job_id)
            release.set()
            await _until(lambda: _idle(engine))
        finally:
            release.set()
            await _stop(engine, task)
        assert await q.get_job(job_id) == done
        assert all(events == [] for events in seen.values()), seen
        assert await _tokens_bound_to(q, job_id) == 0

    _run(storage, body)


async def _tokens_bound_to(q: Any, job_id: int) -> int:
    """How many tokens the store holds bound to ``job_id`` (made by its handler)."""
    backend = q._backend
    if hasattr(backend, "keys"):  # Redis: the job's set of bound tokens
        return int(await backend.client.scard(f"{backend.keys.base}jwp:{job_id}"))
    async with backend.pool.connection() as conn:
        cur = await conn.execute(
            backend._sql._r("SELECT count(*) FROM {s}waitpoints WHERE job_id = %s"), (job_id,)
        )
        row = await cur.fetchone()
    return int(row[0])


async def _flag(event: threading.Event) -> bool:
    return event.is_set()


async def _idle(engine: Engine) -> bool:
    return engine.in_flight_count() == 0


def test_heartbeat_retries_a_transient_error(storage: Any) -> None:
    """Every heartbeat's first try fails (a dropped pooled connection): the retry renews the
    lease, so a job running for several leases is neither reclaimed nor run twice."""

    async def body(q: Any) -> None:
        faulty = Faulty(q._backend)
        last = {"t": 0.0}

        def first_try_fails(*_: Any) -> str | None:
            now, before = time.monotonic(), last["t"]
            last["t"] = now
            return "before" if now - before > 0.1 else None  # a quick retry goes through

        faulty.faults["heartbeat"] = first_try_fails
        runs: list[int] = []

        async def handler(payload: Any, ctx: Any) -> None:
            runs.append(ctx.attempt)
            await asyncio.sleep(2.5)

        engine = _engine(q, faulty, {"t": handler}, lease_seconds=1.0, heartbeat_interval=0.3)
        job_id = await q.add_job("t", max_attempts=3)
        task = asyncio.get_running_loop().create_task(engine.run_loop())

        async def finished() -> bool:
            await q.reclaim_stuck_jobs()  # a supervisor elsewhere, looking for lapsed leases
            job = await q.get_job(job_id)
            return job.status == JobStatus.COMPLETED

        await _until(finished, 20)
        await _stop(engine, task)
        job = await q.get_job(job_id)
        assert runs == [1] and job.attempts == 1
        assert faulty.injected["heartbeat"] >= 5

    _run(storage, body)


def test_supervisor_reclaim_retries_a_transient_error(storage: Any) -> None:
    async def body(q: Any) -> None:
        job_id = await q.add_job("t")
        await q._backend.claim_jobs("dead-worker", 1, lease=timedelta(milliseconds=1))
        await asyncio.sleep(0.05)
        faulty = Faulty(q._backend)
        faulty.faults["find_stuck_jobs"] = ["before", "before"]
        errors: list[Any] = []
        supervisor = AsyncSupervisor(
            faulty, emitter_of(q), parse_supervisor_options(on_error=errors.append)
        )
        result = await supervisor.start()
        assert result.reclaimed_jobs == 1 and errors == []
        assert faulty.calls["find_stuck_jobs"] == 3
        assert (await q.get_job(job_id)).status == JobStatus.PENDING

    _run(storage, body)


def test_pool_hands_out_no_dead_connection(storage: Any) -> None:
    """The server drops every pooled connection of the queue (``pg_terminate_backend`` /
    ``CLIENT KILL``); the next calls get checked, working connections instead of failing."""
    name = f"dq-pool-{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        opts = storage.options()
        url = named(storage.backend, opts.pop("url"), name)
        q = init_async_job_queue(url, **opts)
        try:
            # several pooled connections: concurrent calls each take one
            ids = await asyncio.gather(*(q.add_job("t", {"n": n}) for n in range(4)))
            assert kill_named(storage.backend, storage.url, name) >= 1
            await asyncio.sleep(0.1)
            for job_id in ids:
                assert (await q.get_job(job_id)).status == JobStatus.PENDING
            assert await q.add_job("t") > max(ids)
        finally:
            await q.close()

    asyncio.run(main())

    # the blocking twin's pool too
    opts = storage.options()
    url = named(storage.backend, opts.pop("url"), name)
    q = init_job_queue(url, **opts)
    try:
        job_id = q.add_job("t")
        assert kill_named(storage.backend, storage.url, name) >= 1
        time.sleep(0.1)
        assert q.get_job(job_id).status == JobStatus.PENDING
    finally:
        q.close()


def _collect(q: Any, *events: str) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {e: [] for e in events}
    for event in events:
        q.on(event, seen[event].append)
    return seen


async def _run_until(q: Any, engine: Engine, job_id: int, *statuses: JobStatus) -> Any:
    task = asyncio.get_running_loop().create_task(engine.run_loop())

    async def reached() -> Any:
        job = await q.get_job(job_id)
        return job if job.status in statuses else None

    try:
        return await _until(reached, 20)
    finally:
        await _until(lambda: _idle(engine), 10)
        await _stop(engine, task)


def test_lost_completion_reply_is_reported_as_this_runs_result(
    storage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The server applied the completion, the reply was lost: the retry is refused, and the
    worker sees that the stored completion is its own — job:completed fires (SPEC §10.13)."""

    async def body(q: Any) -> None:
        faulty = Faulty(q._backend)
        faulty.faults["complete_jobs"] = ["after"]
        seen = _collect(q, "job:completed")
        runs: list[int] = []

        async def handler(payload: Any, ctx: Any) -> str:
            runs.append(ctx.attempt)
            return "done"

        job_id = await q.add_job("t")
        job = await _run_until(q, _engine(q, faulty, {"t": handler}), job_id, JobStatus.COMPLETED)
        assert job.output == "done" and runs == [1]
        assert faulty.injected["complete_jobs"] == 1 and faulty.calls["complete_jobs"] == 2
        assert [e["job_id"] for e in seen["job:completed"]] == [job_id]

    with caplog.at_level(logging.WARNING, logger="dataqueue.worker"):
        _run(storage, body)
    assert not any("fenced off" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("max_attempts", [1, 3])
def test_lost_failure_reply_is_reported_as_this_runs_result(
    storage: Any, max_attempts: int
) -> None:
    async def body(q: Any) -> None:
        faulty = Faulty(q._backend)
        faulty.faults["fail_job"] = ["after"]
        seen = _collect(q, "job:failed")

        async def handler(payload: Any, ctx: Any) -> None:
            raise RuntimeError("boom")

        job_id = await q.add_job("t", max_attempts=max_attempts, retry_delay=3600)
        engine = _engine(q, faulty, {"t": handler})
        job = await _run_until(q, engine, job_id, JobStatus.FAILED)
        assert job.attempts == 1 and faulty.injected["fail_job"] == 1
        [event] = seen["job:failed"]
        assert event["job_id"] == job_id and event["will_retry"] is (max_attempts > 1)

    _run(storage, body)


def _outage(seconds: float) -> Callable[..., str | None]:
    """A fault for ``Faulty``: every call fails (before reaching the store) until ``seconds``
    after the first one, like a server restarting."""
    down: dict[str, float] = {}

    def fault(*_: Any) -> str | None:
        start = down.setdefault("t", time.monotonic())
        return "before" if time.monotonic() - start < seconds else None

    return fault


def test_completion_outlasts_an_outage_longer_than_the_old_retry_budget(storage: Any) -> None:
    """The store is unreachable for 2.5 s (a Redis restart loading its AOF) when the run
    ends: the completion keeps retrying within the lease, so the job is not run again."""

    async def body(q: Any) -> None:
        faulty = Faulty(q._backend)
        faulty.faults["complete_jobs"] = _outage(2.5)
        runs: list[int] = []

        async def handler(payload: Any, ctx: Any) -> None:
            runs.append(ctx.attempt)

        job_id = await q.add_job("t")
        engine = _engine(q, faulty, {"t": handler}, lease_seconds=6.0)
        job = await _run_until(q, engine, job_id, JobStatus.COMPLETED)
        assert runs == [1] and job.attempts == 1
        assert faulty.injected["complete_jobs"] >= 5

    _run(storage, body)


def test_lost_claim_reply_costs_no_attempt(storage: Any) -> None:
    """The claim was applied but its reply lost: the worker recovers the jobs the store shows
    it holding and runs them under that claim — a max_attempts=1 job still completes."""

    async def body(q: Any) -> None:
        faulty = Faulty(q._backend)
        faulty.faults["claim_jobs"] = ["after"]
        runs: list[int] = []

        async def handler(payload: Any, ctx: Any) -> None:
            runs.append(ctx.attempt)

        ids = [await q.add_job("t", max_attempts=1) for _ in range(3)]
        engine = _engine(q, faulty, {"t": handler}, lease_seconds=30.0)
        task = asyncio.get_running_loop().create_task(engine.run_loop())

        async def all_done() -> bool:
            jobs = [await q.get_job(i) for i in ids]
            return all(j.status == JobStatus.COMPLETED for j in jobs)

        try:
            await _until(all_done, 10)  # well within the 30 s lease: no reclaim involved
        finally:
            await _stop(engine, task)
        assert faulty.injected["claim_jobs"] == 1
        assert sorted(runs) == [1, 1, 1]
        assert [(await q.get_job(i)).attempts for i in ids] == [1, 1, 1]

    _run(storage, body)


def test_self_reclaim_never_runs_one_job_twice_in_one_worker(storage: Any) -> None:
    """Heartbeats stall for longer than the lease while a handler runs; the job is reclaimed
    and this same worker claims it again. The running handler carries on under the new
    claim: one run, never two at once, and the job completes (it used to end failed with
    worker_lost while every run succeeded)."""

    async def body(q: Any) -> None:
        faulty = Faulty(q._backend)
        faulty.pause("heartbeat")
        active: list[int] = []
        peak = {"n": 0}
        runs: list[int] = []

        async def handler(payload: Any, ctx: Any) -> str:
            runs.append(ctx.attempt)
            active.append(1)
            peak["n"] = max(peak["n"], len(active))
            try:
                await asyncio.sleep(2.5)
                await ctx.set_progress(50)
                return "ok"
            finally:
                active.pop()

        job_id = await q.add_job("t", max_attempts=2)
        engine = _engine(
            q, faulty, {"t": handler}, lease_seconds=0.6, heartbeat_interval=0.2, concurrency=2
        )
        task = asyncio.get_running_loop().create_task(engine.run_loop())
        try:

            async def reclaimed_and_reclaimed() -> bool:
                await q.reclaim_stuck_jobs()
                job = await q.get_job(job_id)
                return job.attempts == 2 and job.status == JobStatus.PROCESSING

            await _until(reclaimed_and_reclaimed, 10)
            faulty.resume("heartbeat")

            async def completed() -> bool:
                await q.reclaim_stuck_jobs()
                return (await q.get_job(job_id)).status == JobStatus.COMPLETED

            await _until(completed, 15)
        finally:
            faulty.resume("heartbeat")
            await _stop(engine, task)
        job = await q.get_job(job_id)
        assert job.output == "ok" and job.progress == 50
        assert runs == [1] and peak["n"] == 1

    _run(storage, body)


def test_two_processors_of_one_queue_each_get_wake_ups(storage: Any) -> None:
    """Two processors made from one AsyncJobQueue wait for work at once: each has its own
    subscription (Redis pub/sub used to be one shared connection, read by both at once; a
    PostgreSQL LISTEN connection was shared too, so one notification woke one of them), so
    both wake within moments of new jobs with no errors — not after poll_interval."""

    async def body(q: Any) -> None:
        errors: list[BaseException] = []
        started: dict[int, str] = {}

        def handler_for(name: str) -> Any:
            async def handler(payload: Any, ctx: Any) -> None:
                started[ctx.job_id] = name
                await asyncio.sleep(1.5)

            return handler

        procs = [
            q.create_processor(
                {"t": handler_for(name)},
                worker_id=name,
                concurrency=1,
                poll_interval=30,
                on_error=errors.append,
            )
            for name in ("p1", "p2")
        ]
        tasks = [asyncio.get_running_loop().create_task(p.run()) for p in procs]
        try:
            await asyncio.sleep(0.5)  # both idle, waiting for work
            t0 = time.monotonic()
            # one statement/script: one notification (PostgreSQL folds a transaction's equal
            # NOTIFYs into one), which a shared LISTEN connection hands to one waiter only
            ids = await q.add_jobs([{"job_type": "t"}, {"job_type": "t"}])

            async def both_started() -> bool:
                return all(i in started for i in ids)

            await _until(both_started, 5)
            assert time.monotonic() - t0 < 1.4  # the second one did not wait for the first
            assert sorted(started.values()) == ["p1", "p2"]
        finally:
            for p in procs:
                await p.stop_and_drain(5)
            await asyncio.gather(*tasks, return_exceptions=True)
        assert errors == []

    _run(storage, body)


def test_lost_wait_reply_is_reported_as_this_runs_result(
    storage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The server parked the job, the reply was lost: the refused retry is told from a fence
    (the job waits under this run's lock version) and job:waiting fires once."""

    async def body(q: Any) -> None:
        faulty = Faulty(q._backend)
        faulty.faults["wait_job"] = ["after"]
        seen = _collect(q, "job:waiting")

        async def handler(payload: Any, ctx: Any) -> None:
            await ctx.wait_for(seconds=3600)

        job_id = await q.add_job("t")
        job = await _run_until(q, _engine(q, faulty, {"t": handler}), job_id, JobStatus.WAITING)
        assert job.attempts == 1
        assert faulty.injected["wait_job"] == 1 and faulty.calls["wait_job"] == 2
        assert [e["job_id"] for e in seen["job:waiting"]] == [job_id]

    with caplog.at_level(logging.WARNING, logger="dataqueue.worker"):
        _run(storage, body)
    assert not any("fenced off" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("call", ["fail_job", "wait_job"])
def test_failure_and_wait_outlast_an_outage_longer_than_the_old_retry_budget(
    storage: Any, call: str
) -> None:
    """Like a completion, a failure or a wait is retried within the lease: a 2.5 s outage
    (a Redis restart) when the run ends leaves no job processing for a reclaim (which would
    fail a last attempt as worker_lost, or spend the attempt of a job that meant to wait)."""

    async def body(q: Any) -> None:
        faulty = Faulty(q._backend)
        faulty.faults[call] = _outage(2.5)

        async def handler(payload: Any, ctx: Any) -> None:
            if call == "wait_job":
                await ctx.wait_for(seconds=3600)
            raise RuntimeError("boom")

        job_id = await q.add_job("t", max_attempts=1)
        engine = _engine(q, faulty, {"t": handler}, lease_seconds=6.0)
        want = JobStatus.WAITING if call == "wait_job" else JobStatus.FAILED
        job = await _run_until(q, engine, job_id, want)
        assert job.attempts == 1 and faulty.injected[call] >= 5
        if call == "fail_job":
            assert job.failure_reason == "handler_error"

    _run(storage, body)


def test_prolong_retries_a_transient_error(storage: Any) -> None:
    """ctx.prolong's first try fails (a dropped connection): the retry renews the lease, so
    with heartbeats stalled the job outlives its short lease without being reclaimed."""

    async def body(q: Any) -> None:
        faulty = Faulty(q._backend)
        faulty.faults["prolong_job"] = ["before"]
        faulty.pause("heartbeat")

        async def handler(payload: Any, ctx: Any) -> str:
            await ctx.prolong(20_000)
            await asyncio.sleep(2.0)  # twice the lease: only the prolong keeps the job
            return "ok"

        job_id = await q.add_job("t", max_attempts=3)
        engine = _engine(q, faulty, {"t": handler}, lease_seconds=1.0, heartbeat_interval=0.2)
        task = asyncio.get_running_loop().create_task(engine.run_loop())

        async def finished() -> bool:
            await q.reclaim_stuck_jobs()
            return (await q.get_job(job_id)).status == JobStatus.COMPLETED

        try:
            await _until(finished, 15)
        finally:
            faulty.resume("heartbeat")
            await _stop(engine, task)
        assert faulty.injected["prolong_job"] == 1
        assert (await q.get_job(job_id)).attempts == 1

    _run(storage, body)


def test_run_once_lost_claim_reply_costs_no_attempt(storage: Any) -> None:
    """The one-shot path (``processor.start()``) recovers a claim whose reply was lost too."""

    async def body(q: Any) -> None:
        faulty = Faulty(q._backend)
        faulty.faults["claim_jobs"] = ["after"]
        ids = [await q.add_job("t", max_attempts=1) for _ in range(2)]

        async def handler(payload: Any, ctx: Any) -> None:
            return None

        engine = _engine(q, faulty, {"t": handler}, lease_seconds=30.0)
        try:
            assert await engine.run_once() == 2
        finally:
            await engine.close()
        jobs = [await q.get_job(i) for i in ids]
        assert [(j.status, j.attempts) for j in jobs] == [(JobStatus.COMPLETED, 1)] * 2

    _run(storage, body)


async def _late_claim_reply(q: Any, handler: Any, meanwhile: Any) -> None:
    """Run an engine whose first claim is applied but its reply read only once ``meanwhile``
    (run after the claim's 0.6 s lease lapsed) is done; wait until it has dealt with it."""
    faulty = Faulty(q._backend)
    faulty.hold_reply("claim_jobs")
    engine = _engine(
        q, faulty, {"t": handler}, lease_seconds=0.6, heartbeat_interval=0.2, concurrency=1
    )
    task = asyncio.get_running_loop().create_task(engine.run_loop())
    try:
        await _until(lambda: faulty.held["claim_jobs"] == 1, 10)
        await asyncio.sleep(0.8)  # past the lease
        await meanwhile()
        faulty.release("claim_jobs")
        # the late reply dealt with: a later claim was made and nothing is in flight
        await _until(lambda: faulty.calls["claim_jobs"] >= 2 and engine.in_flight_count() == 0)
    finally:
        faulty.release("claim_jobs")
        await _stop(engine, task)


def test_claim_reply_read_after_a_takeover_starts_no_run(
    storage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A claim's reply is read only after its lease lapsed and another worker took the job
    over (the process was paused with the reply unread, as SIGSTOP does): the late reply
    starts no run of the job, so two workers never run it at once (chaos: sigstop)."""

    async def body(q: Any) -> None:
        runs: list[int] = []
        job_id = await q.add_job("t", max_attempts=3)
        taken: list[Any] = []

        async def handler(payload: Any, ctx: Any) -> None:
            runs.append(ctx.attempt)

        async def take_over() -> None:
            assert await q.reclaim_stuck_jobs() == 1
            taken.extend(await q._backend.claim_jobs("worker-b", 1, lease=timedelta(seconds=30)))

        await _late_claim_reply(q, handler, take_over)
        [other] = taken
        assert runs == []
        job = await q.get_job(job_id)
        assert (job.status, job.locked_by, job.lock_version) == (
            JobStatus.PROCESSING,
            "worker-b",
            other.lock_version,
        )
        assert await q._backend.complete_job(job_id, "worker-b", other.lock_version, None)

    with caplog.at_level(logging.WARNING, logger="dataqueue.worker"):
        _run(storage, body)
    assert any("start dropped" in r.getMessage() for r in caplog.records)


def test_claim_reply_read_after_its_lease_lapsed_runs_once_if_still_held(storage: Any) -> None:
    """The same late reply, but nobody took the job meanwhile (no reclaim ran): this worker
    still holds it, renews the lease and runs it, under that claim's attempt."""

    async def body(q: Any) -> None:
        runs: list[int] = []
        job_id = await q.add_job("t", max_attempts=1)

        async def handler(payload: Any, ctx: Any) -> str:
            runs.append(ctx.attempt)
            return "ok"

        async def nothing() -> None:
            return None

        await _late_claim_reply(q, handler, nothing)
        job = await q.get_job(job_id)
        assert runs == [1]
        assert (job.status, job.attempts, job.output) == (JobStatus.COMPLETED, 1, "ok")

    _run(storage, body)
