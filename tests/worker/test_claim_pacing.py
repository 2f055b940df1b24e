"""When an idle processor claims: once per woken job (no empty claim after every completion),
yet still at once for what a completion or a failure makes claimable without a backend
wake-up (tag drains, freed group slots, immediate retries). ``poll_interval`` is long here,
so only wake-ups and kicks can explain a prompt pickup."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from dataqueue import init_async_job_queue

SLOW_POLL = 8.0  # longer than any wait below: a prompt pickup is not the poll


@pytest.fixture
def storage_options(storage: Any, twin: str) -> dict[str, Any]:
    if twin != "async":
        pytest.skip("drives the asyncio engine directly; one twin is enough")
    return storage.options()  # type: ignore[no-any-return]


async def _run(
    options: dict[str, Any], scenario: Any, arrange: Any = None, **proc_options: Any
) -> Any:
    """Run ``scenario(queue, done, claims)`` against an idle processor; ``arrange(queue)``
    (if given) enqueues first, so the processor's first claim finds those jobs."""
    queue = init_async_job_queue(**options)
    backend = queue._backend
    claims = 0
    claim_jobs = backend.claim_jobs

    async def counting_claim(*args: Any, **kwargs: Any) -> Any:
        nonlocal claims
        claims += 1
        return await claim_jobs(*args, **kwargs)

    backend.claim_jobs = counting_claim
    done: asyncio.Queue[int] = asyncio.Queue()
    queue.on("job:completed", lambda event: done.put_nowait(event["job_id"]))
    attempts: dict[int, int] = {}

    async def handler(payload: Any, ctx: Any) -> None:
        attempts[ctx.job_id] = attempts.get(ctx.job_id, 0) + 1
        if payload.get("fail_first") and attempts[ctx.job_id] == 1:
            raise RuntimeError("first attempt fails")

    proc = queue.create_processor(
        {"t": handler}, poll_interval=SLOW_POLL, lease_seconds=30.0, **proc_options
    )
    try:
        arranged = await arrange(queue) if arrange is not None else None
        proc.start_in_background()
        if arranged is not None:
            return await scenario(queue, done, arranged)
        await asyncio.sleep(0.3)  # idle now
        return await scenario(queue, done, lambda: claims)
    finally:
        await proc.stop_and_drain(5)
        await queue.close()


async def _completed(done: asyncio.Queue[int], n: int) -> set[int]:
    return {await asyncio.wait_for(done.get(), 5.0) for _ in range(n)}


def test_idle_worker_claims_once_per_woken_job(storage_options: dict[str, Any]) -> None:
    async def scenario(queue: Any, done: asyncio.Queue[int], claims: Any) -> int:
        before = claims()
        for _ in range(20):
            job_id = await queue.add_job("t", {})
            assert await asyncio.wait_for(done.get(), 5.0) == job_id
            await asyncio.sleep(0.02)  # the completion is flushed; the worker is idle again
        return int(claims() - before)

    woken = asyncio.run(_run(storage_options, scenario, concurrency=10))
    # One claim per job (a few spare for wake-ups that raced a claim); claiming again after
    # every finished job and every completion flush would take 40-60.
    assert woken <= 26, woken


async def _dependent(queue: Any) -> list[int]:
    first = await queue.add_job("t", {})
    return [first, await queue.add_job("t", {}, depends_on={"job_ids": [first]})]


async def _tag_drain(queue: Any) -> list[int]:
    tagged = await queue.add_job("t", {}, tags=["x"])
    return [tagged, await queue.add_job("t", {}, depends_on={"tags": ["x"]})]


async def _immediate_retry(queue: Any) -> list[int]:
    return [await queue.add_job("t", {"fail_first": True}, retry_delay=0)]


@pytest.mark.parametrize("arrange", [_dependent, _tag_drain, _immediate_retry])
def test_idle_worker_still_picks_up_what_it_unblocks(
    storage_options: dict[str, Any], arrange: Any
) -> None:
    async def scenario(queue: Any, done: asyncio.Queue[int], ids: list[int]) -> None:
        assert await _completed(done, len(ids)) == set(ids)

    asyncio.run(_run(storage_options, scenario, arrange, concurrency=10))


def test_idle_worker_refills_freed_group_slots(storage_options: dict[str, Any]) -> None:
    async def arrange(queue: Any) -> list[int]:
        return [await queue.add_job("t", {}, group={"id": "g"}) for _ in range(3)]

    async def scenario(queue: Any, done: asyncio.Queue[int], ids: list[int]) -> None:
        assert await _completed(done, 3) == set(ids)

    asyncio.run(_run(storage_options, scenario, arrange, concurrency=10, group_concurrency=1))
