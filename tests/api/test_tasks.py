"""The task decorator, awaiting results and unique jobs, on both backends and both twins."""

from __future__ import annotations

import dataclasses
import enum
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, TypedDict

import pydantic
import pytest
from _worker_helpers import FAST, run_once, run_threads, stop_processor
from dataqueue import (
    ConfigurationError,
    DependencyError,
    DependsOn,
    InvalidJobError,
    JobCancelledError,
    JobFailedError,
    JobStatus,
    NonRetryable,
    ResultTimeoutError,
    RetryPolicy,
)
from dataqueue.cli.worker import load_handlers


@dataclasses.dataclass
class Address:
    city: str
    zip: str


@dataclasses.dataclass
class Order:
    id: int
    to: Address
    placed: datetime


def test_defer_stores_arguments_and_the_worker_calls_the_function(q: Any) -> None:
    seen: list[Any] = []

    def ship(order: Order, express: bool = False) -> Address:
        seen.append((order, express))
        return order.to

    task = q.task(ship)
    test_name = "test_defer_stores_arguments_and_the_worker_calls_the_function"
    assert task.job_type == f"{__name__}.{test_name}.<locals>.ship"
    placed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    handle = task.defer(Order(7, Address("Oslo", "0150"), placed), express=True)
    job = q.get_job(handle.job_id)
    assert job.job_type == task.job_type
    assert job.payload == {
        "order": {"id": 7, "to": {"city": "Oslo", "zip": "0150"}, "placed": placed.isoformat()},
        "express": True,
    }
    assert run_once(q) == 1
    assert seen == [(Order(7, Address("Oslo", "0150"), placed), True)]
    assert q.get_job(handle.job_id).output == {"city": "Oslo", "zip": "0150"}
    assert handle.result(timeout=5) == Address("Oslo", "0150")  # decoded to the return type


def test_async_function_ctx_defaults_and_explicit_name(q: Any) -> None:
    async def resize(ctx: Any, width: int, height: int = 10) -> int:
        await ctx.set_progress(50)
        return width * height

    task = q.task(resize, job_type="images.resize", max_attempts=5, priority=3, tags=["img"])
    handle = task.defer(width=4)
    job = q.get_job(handle.job_id)
    assert (job.job_type, job.max_attempts, job.priority, job.tags) == (
        "images.resize", 5, 3, ("img",),
    )  # fmt: skip
    assert job.payload == {"width": 4}  # defaults are applied when the job runs
    assert "images.resize" in q.tasks
    assert run_once(q) == 1
    assert handle.result(timeout=5) == 40
    assert q.get_job(handle.job_id).progress == 50


def test_configure_overrides_options_for_its_jobs_only(q: Any) -> None:
    task = q.task(lambda n: n, job_type="echo", priority=1)
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    first = task.configure(priority=9, run_at=later, idempotency_key="k1").defer(1)
    again = task.configure(idempotency_key="k1").defer(2)
    plain = task.defer(3)
    assert again.job_id == first.job_id
    job = q.get_job(first.job_id)
    assert job.priority == 9 and job.run_at == later and job.idempotency_key == "k1"
    assert q.get_job(plain.job_id).priority == 1
    dependent = task.configure(depends_on=[plain.job_id]).defer(4)
    assert q.get_job(dependent.job_id).depends_on_job_ids == (plain.job_id,)


def test_bad_arguments_and_options_are_rejected_before_writing(q: Any) -> None:
    def add(a: int, b: int) -> int:
        return a + b

    task = q.task(add, job_type="add")
    with pytest.raises(InvalidJobError, match="add"):
        task.defer(1, 2, 3)
    with pytest.raises(InvalidJobError, match="missing"):
        task.defer(1)
    with pytest.raises(InvalidJobError, match="tags"):
        q.task(add, job_type="add2", tags="x")
    with pytest.raises(InvalidJobError, match="tags"):
        q.add_job("t", tags="x")
    with pytest.raises(ConfigurationError, match="share the job type"):
        q.task(lambda a, b: a, job_type="add")
    with pytest.raises(ConfigurationError, match="retry_on"):
        q.task(add, job_type="add3", retry_on=("nope",))
    # The options are typed keywords (a type checker catches a misspelling first); at run time
    # an unknown one is the TypeError Python gives for any function, naming it.
    with pytest.raises(TypeError, match="run_at"):
        q.task(add, job_type="add4", run_at=datetime.now(timezone.utc))
    with pytest.raises(TypeError, match="timeout_ms"):
        task.configure(timeout_ms=5)
    with pytest.raises(TypeError, match="concurency"):
        q.create_processor(q.tasks, concurency=3)
    assert q.get_all_jobs() == []


def test_result_raises_job_failed_error_with_the_stored_error(q: Any) -> None:
    def explode() -> None:
        raise ValueError("bad input 42")

    task = q.task(explode, job_type="explode", max_attempts=1)
    handle = task.defer()
    assert run_once(q) == 1
    with pytest.raises(JobFailedError, match="bad input 42") as info:
        handle.result(timeout=5)
    assert info.value.error == "bad input 42"
    assert info.value.traceback is not None and "ValueError: bad input 42" in info.value.traceback
    assert info.value.job_id == handle.job_id
    assert [e["message"] for e in info.value.error_history] == ["bad input 42"]
    assert info.value.failure_reason == "handler_error"


def test_result_raises_cancelled_and_times_out(q: Any) -> None:
    task = q.task(lambda: None, job_type="noop")
    handle = task.defer()
    started = time.monotonic()
    with pytest.raises(ResultTimeoutError, match=r"did not finish within 0\.2 s"):
        handle.result(timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 3
    assert q.cancel_job(handle.job_id)
    with pytest.raises(JobCancelledError):
        handle.result(timeout=5)
    with pytest.raises(InvalidJobError):
        q.wait_for_job(handle.job_id, timeout=-1)


def test_wait_for_job_is_woken_by_the_finish_notification(q: Any, twin: str) -> None:
    """A waiter blocked on a pending job returns soon after another connection completes it
    (well before the 5 s safety re-read), on both backends."""
    job_id = q.add_job("later", {"n": 1})
    results: list[Any] = []

    def wait() -> None:
        results.append(q.wait_for_job(job_id, timeout=20))

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)  # the waiter has read the job (pending) and sleeps on the subscription
    processor = q.create_processor({"later": lambda p, c: {"doubled": p["n"] * 2}}, **FAST)
    started = time.monotonic()
    try:
        assert processor.start() == 1
        waiter.join(10)
        elapsed = time.monotonic() - started
    finally:
        stop_processor(processor)
    assert results == [{"doubled": 2}]
    assert elapsed < 3.0, elapsed


def test_waiters_are_woken_by_a_terminal_failure_and_its_cascade(q: Any) -> None:
    """``result()`` on a failing job and ``wait_for_job`` on its dependent both return soon
    after the worker fails it (well before the 5 s safety re-read)."""

    def refuse() -> None:
        raise NonRetryable("no")

    task = q.task(refuse, job_type="refuse", max_attempts=3)
    handle = task.defer()
    child = q.add_job("child", {}, depends_on={"job_ids": [handle.job_id]})
    ended: dict[str, tuple[str, float]] = {}

    def wait(name: str, call: Any) -> None:
        try:
            call()
        except (JobFailedError, JobCancelledError) as exc:
            ended[name] = (type(exc).__name__, time.monotonic())

    waiters = [
        threading.Thread(target=wait, args=("parent", lambda: handle.result(timeout=20))),
        threading.Thread(target=wait, args=("child", lambda: q.wait_for_job(child, timeout=20))),
    ]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.5)  # both waiters read a pending job and sleep on the subscription
    started = time.monotonic()
    assert run_once(q, job_type="refuse") == 1
    for waiter in waiters:
        waiter.join(10)
    assert ended["parent"][0] == "JobFailedError" and ended["child"][0] == "JobCancelledError"
    assert max(t for _, t in ended.values()) - started < 3.0, ended


def test_unique_while_active(q: Any) -> None:
    first = q.add_job("sync_account", {"id": 1}, unique_while="active")
    assert q.add_job("sync_account", {"id": 1}, unique_while="active") == first
    other = q.add_job("sync_account", {"id": 2}, unique_while="active")
    assert other != first
    keyed = q.add_job("sync_account", {"id": 3}, unique_key="acct", unique_while="active")
    assert q.add_job("sync_account", {"id": 4}, unique_key="acct", unique_while="active") == keyed
    assert run_once(q, {"sync_account": lambda p, c: None}, batch_size=10) == 3
    assert q.get_job(first).status == JobStatus.COMPLETED
    fresh = q.add_job("sync_account", {"id": 1}, unique_while="active")
    assert fresh not in (first, other, keyed)
    ids = q.add_jobs(
        [
            {"job_type": "sync_account", "payload": {"id": 1}, "unique_while": "active"},
            {"job_type": "sync_account", "payload": {"id": 9}, "unique_while": "active"},
            {"job_type": "sync_account", "payload": {"id": 9}, "unique_while": "active"},
            {"job_type": "plain", "payload": {}},
        ]
    )
    assert ids[0] == fresh
    assert ids[1] == ids[2] and ids[1] not in (fresh, ids[3])
    assert len(q.get_all_jobs()) == 6


def test_unique_while_active_counts_a_retrying_job_as_active(q: Any) -> None:
    def flaky(p: Any, c: Any) -> None:
        raise RuntimeError("try again")

    first = q.add_job("flaky", {}, unique_while="active", max_attempts=2, retry_delay=60)
    assert run_once(q, {"flaky": flaky}) == 1
    job = q.get_job(first)
    assert job.status == JobStatus.FAILED and job.next_attempt_at is not None
    assert q.add_job("flaky", {}, unique_while="active") == first


def test_unique_for_a_period(q: Any) -> None:
    first = q.add_job("digest", {"user": 1}, unique_for=timedelta(seconds=0.6))
    assert run_once(q, {"digest": lambda p, c: None}) == 1
    # Finished, but still inside the period: deduplicated.
    assert q.add_job("digest", {"user": 1}, unique_for=0.6) == first
    time.sleep(0.7)
    assert q.add_job("digest", {"user": 1}, unique_for=0.6) != first


def test_unique_adds_race_to_one_job(q: Any) -> None:
    ids: list[int] = []
    run_threads(8, lambda _: ids.append(q.add_job("once", {"k": 1}, unique_while="active")))
    assert len(set(ids)) == 1 and len(ids) == 8
    assert len(q.get_all_jobs()) == 1


def test_unique_options_are_validated(q: Any) -> None:
    with pytest.raises(InvalidJobError, match="unique_while"):
        q.add_job("x", unique_while="forever")
    with pytest.raises(InvalidJobError, match="unique_for"):
        q.add_job("x", unique_for=-1)
    with pytest.raises(InvalidJobError, match="scope"):
        q.add_job("x", unique_key="k")
    with pytest.raises(InvalidJobError, match=r"jobs\[1\]: unique_for"):
        q.add_jobs([{"job_type": "x"}, {"job_type": "x", "unique_for": 0}])
    assert q.get_all_jobs() == []


def test_worker_cli_loads_every_task_of_a_module(tmp_path: Any, monkeypatch: Any) -> None:
    (tmp_path / "myapp_tasks_mod.py").write_text(
        "from dataqueue import init_job_queue\n"
        "q = init_job_queue('redis://127.0.0.1:6379/0')\n"
        "@q.task\n"
        "def one(x: int) -> int:\n    return x\n"
        "@q.task(name='two')\n"
        "async def two() -> None:\n    return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    handlers = load_handlers("myapp_tasks_mod")
    assert sorted(handlers) == ["myapp_tasks_mod.one", "two"]
    assert load_handlers("myapp_tasks_mod:q.tasks").keys() == handlers.keys()


def test_parent_outputs_pass_data_along_the_dag(q: Any) -> None:
    from dataqueue import DependsOn, batch_dep_ref

    got: dict[str, Any] = {}

    async def merge_async(payload: Any, ctx: Any) -> int:
        parents = await ctx.parent_outputs()
        got["async"] = parents
        return sum(v["rows"] for v in parents.values())

    def merge_sync(payload: Any, ctx: Any) -> int:
        got["sync"] = ctx.parent_outputs()
        return 0

    ids = q.add_jobs(
        [
            {"job_type": "download", "payload": {"rows": 3}},
            {"job_type": "download", "payload": {"rows": 4}},
            {"job_type": "merge_async", "payload": {},
             "depends_on": DependsOn(job_ids=[batch_dep_ref(0), batch_dep_ref(1)])},
            {"job_type": "merge_sync", "payload": {},
             "depends_on": {"job_ids": [batch_dep_ref(0)], "tags": []}},
            {"job_type": "merge_sync_alone", "payload": {}},
        ]
    )  # fmt: skip
    handlers = {
        "download": lambda p, c: {"rows": p["rows"]},
        "merge_async": merge_async,
        "merge_sync": merge_sync,
        "merge_sync_alone": lambda p, c: c.parent_outputs(),
    }
    assert run_once(q, handlers) == 3  # the downloads (and the job with no parents)
    assert run_once(q, handlers) == 2
    assert got["async"] == {ids[0]: {"rows": 3}, ids[1]: {"rows": 4}}
    assert got["sync"] == {ids[0]: {"rows": 3}}
    assert q.get_job(ids[2]).output == 7
    assert q.get_job(ids[4]).status == JobStatus.COMPLETED
    assert q.get_job(ids[4]).output == {}  # no parents


class Customer(pydantic.BaseModel):
    name: str
    since: datetime


class Tier(enum.Enum):
    GOLD = "gold"
    SILVER = "silver"


class Line(TypedDict):
    sku: str
    qty: int


def test_defer_checks_argument_types_before_writing(q: Any) -> None:
    """What a type checker would reject is an ``InvalidJobError`` naming the argument and the
    value, and nothing is written."""

    def order(lines: list[Line], tier: Tier, note: str | None = None, *tags: str) -> int:
        return 0

    task = q.task(order, job_type="order")
    line = {"sku": "a", "qty": 1}
    bad_calls: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [
        ((), {"lines": [line], "tier": "gold"}, r"argument 'tier': expected Tier, got 'gold'"),
        ((), {"lines": [line], "tier": Tier.GOLD, "note": 5}, r"'note': .*got 5"),
        ((), {"lines": [{"sku": "a", "qty": "1"}], "tier": Tier.GOLD}, r"'lines'\[0\]\['qty'\]"),
        ((), {"lines": [{"sku": "a"}], "tier": Tier.GOLD}, r"missing the key\(s\) \['qty'\]"),
        ((), {"lines": [{**line, "price": 1}], "tier": Tier.GOLD}, r"no key\(s\) \['price'\]"),
        ((), {"lines": line, "tier": Tier.GOLD}, r"'lines': expected list"),
        (([line], Tier.GOLD, None, "ok", 3), {}, r"'tags\[1\]': expected str, got 3"),
        ((), {"lines": [], "tier": Tier.GOLD, "note": object()}, r"'note'"),
    ]
    for args, kwargs, message in bad_calls:
        with pytest.raises(InvalidJobError, match=message):
            task.defer(*args, **kwargs)
    assert q.get_all_jobs() == []


def test_typed_dicts_enums_and_pydantic_models_go_through_the_worker(q: Any) -> None:
    seen: list[Any] = []

    def welcome(customer: Customer, line: Line, tier: Tier = Tier.SILVER) -> Customer:
        seen.append((customer, line, tier))
        return customer

    task = q.task(welcome, job_type="welcome")
    since = datetime(2025, 5, 1, tzinfo=timezone.utc)
    first = task.defer(Customer(name="ada", since=since), {"sku": "x", "qty": 2}, Tier.GOLD)
    # A dict the model accepts is fine too (validated now, turned into the model at run time).
    second = task.defer({"name": "bob", "since": since.isoformat()}, {"sku": "y", "qty": 1})
    with pytest.raises(InvalidJobError, match="'customer': not a valid Customer"):
        task.defer({"name": "eve", "since": "not a date"}, {"sku": "z", "qty": 1})
    assert q.get_job(first.job_id).payload["tier"] == "gold"
    assert run_once(q) == 2
    assert first.result(timeout=5) == Customer(name="ada", since=since)
    assert second.result(timeout=5).name == "bob"
    assert sorted((c.name, line["qty"], tier) for c, line, tier in seen) == [
        ("ada", 2, Tier.GOLD),
        ("bob", 1, Tier.SILVER),
    ]


def test_decorator_and_configure_options_are_checked_when_given(q: Any) -> None:
    def noop() -> None:
        return None

    for options, message in (
        ({"tags": ("a", 1)}, "tags entry"),
        ({"max_attempts": "x"}, "max_attempts"),
        ({"priority": 1.5}, "priority"),
        ({"unique_while": "forever"}, "unique_while"),
        ({"dead_letter_job_type": ""}, "dead_letter_job_type"),
    ):
        with pytest.raises(InvalidJobError, match=message):
            q.task(noop, job_type="checked", **options)
    assert "checked" not in q.tasks
    task = q.task(noop, job_type="checked")
    with pytest.raises(InvalidJobError, match="timezone-aware"):
        task.configure(run_at=datetime.now())  # naive: the mistake under test
    with pytest.raises(DependencyError, match="'12'"):
        task.configure(depends_on="12")
    with pytest.raises(DependencyError, match="True"):
        task.configure(depends_on=[True])
    assert q.get_all_jobs() == []


def test_configure_depends_on_takes_ids_handles_and_mappings(q: Any, twin: str) -> None:
    step = q.task(lambda n: n, job_type="step")
    a, b = step.defer(1), step.defer(2)
    # (On the async twin the test bridge wraps handles; a bridged one in a list is not one.)
    first = a if twin == "sync" else a.job_id
    for depends_on, expected in (
        (a, (a.job_id,)),
        (a.job_id, (a.job_id,)),
        ([first, b.job_id], (a.job_id, b.job_id)),
        ({"job_ids": [b.job_id]}, (b.job_id,)),
        (DependsOn(job_ids=[a.job_id], tags=["t"]), (a.job_id,)),
    ):
        child = step.configure(depends_on=depends_on).defer(3)
        assert q.get_job(child.job_id).depends_on_job_ids == expected, depends_on


def test_retry_keyword_takes_a_count_or_a_policy(q: Any) -> None:
    def fail(kind: str) -> None:
        raise {"value": ValueError, "key": KeyError}[kind](kind)

    counted = q.task(fail, job_type="counted", retry=2)
    assert q.get_job(counted.defer("key").job_id).max_attempts == 3
    policy = RetryPolicy(dont_retry_on=(ValueError,))
    with_policy = q.task(lambda kind: fail(kind), job_type="with_policy", retry=policy)
    v, k = with_policy.defer("value").job_id, with_policy.defer("key").job_id
    assert run_once(q, job_type=["with_policy"]) == 2
    assert q.get_job(v).status == JobStatus.FAILED and q.get_job(v).next_attempt_at is None
    assert q.get_job(k).next_attempt_at is not None  # KeyError still retries
    for bad, message in (
        ({"retry": -1}, "retry must be"),
        ({"retry": True}, "retry must be"),
        ({"retry": 2, "max_attempts": 5}, "max_attempts=3"),
        ({"retry": policy, "retry_on": KeyError}, "not both"),
    ):
        with pytest.raises(ConfigurationError, match=message):
            q.task(fail, job_type="bad_retry", **bad)


def test_unique_for_races_to_one_job(q: Any) -> None:
    ids: list[int] = []
    run_threads(8, lambda _: ids.append(q.add_job("digest", {"u": 1}, unique_for=60)))
    task = q.task(lambda u: u, job_type="digest_task", unique_while="active")
    handles: list[Any] = []
    run_threads(8, lambda _: handles.append(task.defer(2)))
    assert len(set(ids)) == 1 and len({h.job_id for h in handles}) == 1
    assert len(q.get_all_jobs()) == 2


FORCE_KILL_MODULE = """
import os, time
from dataqueue import init_job_queue

q = init_job_queue(os.environ["DQ_FK_URL"], **({"key_prefix": os.environ["DQ_FK_PREFIX"]}
                                              if os.environ["DQ_FK_PREFIX"] else {}))


@q.task(job_type="fk.double", force_kill_on_timeout=True, timeout=30, max_attempts=1)
def double(n: int) -> int:
    return n * 2


@q.task(job_type="fk.stuck", force_kill_on_timeout=True, timeout=0.5, max_attempts=2,
        retry_on=TimeoutError)
def stuck() -> None:
    time.sleep(30)
"""


def test_force_kill_tasks_run_in_a_child_process(
    q: Any, storage: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    """A task's handler can be sent to the child process by reference (``module.task.handler``),
    and its killed timeout is a ``TimeoutError`` for ``retry_on``. The module's own (blocking)
    queue adds the jobs; this test's queue (either twin) runs them."""
    (tmp_path / "dq_force_kill_tasks.py").write_text(FORCE_KILL_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DQ_FK_URL", storage.url)
    monkeypatch.setenv("DQ_FK_PREFIX", storage.key_prefix or "")
    monkeypatch.delitem(sys.modules, "dq_force_kill_tasks", raising=False)
    import dq_force_kill_tasks as module  # type: ignore[import-not-found]

    try:
        double = module.double.defer(21).job_id
        stuck = module.stuck.defer().job_id
        assert run_once(q, module.q.tasks, batch_size=2) == 2
        assert q.wait_for_job(double, timeout=30) == 42
        job = q.get_job(stuck)
        assert job.failure_reason == "timeout"
        assert job.next_attempt_at is not None  # retry_on=TimeoutError covers the kill
    finally:
        module.q.close()
