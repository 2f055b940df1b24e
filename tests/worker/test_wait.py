"""Durable steps and waits (inventory §12.4, SPEC §10.4)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from dataqueue.worker import WaitSignal

from ._helpers import wait_status, wait_until


def test_run_persists_and_replays_steps(q: Any, make_processor: Any) -> None:
    calls: list[str] = []

    def handler(payload: Any, ctx: Any) -> Any:
        first = ctx.run("first", lambda: calls.append("first") or 1)
        if ctx.attempt == 1:
            raise RuntimeError("crash after the first step")
        second = ctx.run("second", lambda: calls.append("second") or 2)
        return [first, second]

    job_id = q.add_job("s", {}, max_attempts=2, retry_delay=0, retry_backoff=False)
    proc = make_processor({"s": handler})
    proc.start()
    job = q.get_job(job_id)
    assert job.status.value == "failed"
    assert job.step_data["first"]["result"] == 1
    wait_until(lambda: proc.start() == 1, timeout=10)
    job = q.get_job(job_id)
    assert job.status.value == "completed"
    assert job.output == [1, 2]
    assert calls == ["first", "second"]


def test_wait_for_parks_and_resumes_without_consuming_an_attempt(
    q: Any, make_processor: Any
) -> None:
    runs: list[int] = []

    def handler(payload: Any, ctx: Any) -> str:
        runs.append(ctx.attempt)
        ctx.wait_for(seconds=1)
        return "after wait"

    job_id = q.add_job("w", {})
    proc = make_processor({"w": handler})
    before = datetime.now(timezone.utc)
    proc.start()
    job = q.get_job(job_id)
    assert job.status.value == "waiting"
    assert job.wait_until is not None
    assert before + timedelta(seconds=0.5) < job.wait_until < before + timedelta(seconds=5)
    assert "waiting" in [e.event_type.value for e in q.get_job_events(job_id)]
    assert proc.start() == 0  # not claimable before wait_until
    wait_until(lambda: proc.start() == 1, timeout=10)
    job = q.get_job(job_id)
    assert job.status.value == "completed"
    assert job.output == "after wait"
    assert job.attempts == 1
    assert runs == [1, 1]


def test_wait_until_and_sequential_waits(q: Any, make_processor: Any) -> None:
    async def handler(payload: Any, ctx: Any) -> list[str]:
        done = []
        await ctx.wait_until(datetime.now(timezone.utc) + timedelta(milliseconds=300))
        done.append(await ctx.run("a", lambda: "a"))
        await ctx.wait_for(seconds=0.3)
        done.append(await ctx.run("b", lambda: "b"))
        return done

    job_id = q.add_job("w", {})
    make_processor({"w": handler}).start_in_background()
    job = wait_status(q, job_id, "completed")
    assert job.output == ["a", "b"]
    assert job.attempts == 1
    waits = [e for e in q.get_job_events(job_id) if e.event_type.value == "waiting"]
    assert len(waits) == 2


def test_wait_for_token_resumes_with_output(q: Any, make_processor: Any) -> None:
    tokens: list[str] = []

    def handler(payload: Any, ctx: Any) -> Any:
        token = ctx.create_token(timeout="10m")
        tokens.append(token)
        return ctx.wait_for_token(token)

    job_id = q.add_job("t", {})
    make_processor({"t": handler}).start_in_background()
    job = wait_status(q, job_id, "waiting")
    assert job.wait_token_id == tokens[0]
    assert q.complete_token(tokens[0], {"approved": True})
    job = wait_status(q, job_id, "completed")
    assert job.output == {"ok": True, "output": {"approved": True}}
    assert tokens[0] == tokens[-1]  # create_token is memoized across re-invocations
    assert job.attempts == 1


def test_wait_for_token_timeout(q: Any, make_processor: Any) -> None:
    def handler(payload: Any, ctx: Any) -> Any:
        token = ctx.create_token(timeout=1)
        return ctx.wait_for_token(token)

    job_id = q.add_job("t", {})
    make_processor({"t": handler}).start_in_background()
    wait_status(q, job_id, "waiting")

    def expired() -> bool:
        q.expire_timed_out_tokens()
        return q.get_job(job_id).status.value != "waiting"

    wait_until(expired, timeout=10, interval=0.2)
    job = wait_status(q, job_id, "completed")
    assert job.output == {"ok": False, "error": "Token timed out"}


def test_wait_for_external_token(q: Any, make_processor: Any) -> None:
    token = q.create_token()
    token_id = token.id if hasattr(token, "id") else token

    async def handler(payload: Any, ctx: Any) -> Any:
        return await ctx.wait_for_token(payload["token"])

    q.complete_token(token_id, 5)
    job_id = q.add_job("t", {"token": token_id})
    make_processor({"t": handler}).start()
    job = q.get_job(job_id)
    assert job.status.value == "completed"  # already completed: no wait at all
    assert job.output == {"ok": True, "output": 5}


def test_cancel_a_waiting_job(q: Any, make_processor: Any) -> None:
    job_id = q.add_job("w", {})
    make_processor({"w": lambda p, c: c.wait_for(hours=1)}).start()
    assert q.get_job(job_id).status.value == "waiting"
    assert q.cancel_job(job_id)
    assert q.get_job(job_id).status.value == "cancelled"


def test_wait_signal_is_not_swallowed_by_except_exception(q: Any, make_processor: Any) -> None:
    def handler(payload: Any, ctx: Any) -> str:
        try:
            ctx.wait_for(minutes=5)
        except Exception:
            return "swallowed"
        return "unreachable"

    assert not issubclass(WaitSignal, Exception)
    job_id = q.add_job("w", {})
    make_processor({"w": handler}).start()
    assert q.get_job(job_id).status.value == "waiting"


def test_invalid_wait_fails_the_job(q: Any, make_processor: Any) -> None:
    job_id = q.add_job("w", {}, max_attempts=1)
    make_processor({"w": lambda p, c: c.wait_for(seconds=0)}).start()
    job = q.get_job(job_id)
    assert job.status.value == "failed"
    assert "positive" in job.error_history[-1]["message"]
