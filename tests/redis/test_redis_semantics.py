"""Redis-specific behaviour: sentinel-free storage, atomic batches, set moves, drains, wake-ups,
cron exactly once, configuration and error mapping."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from _redis_fixtures import REDIS_URL
from dataqueue.backends.redis.backend_async import AsyncRedisBackend
from dataqueue.backends.redis.backend_sync import RedisBackend
from dataqueue.backends.redis.config import RedisSettings
from dataqueue.backends.types import CronInput
from dataqueue.errors import (
    BackendError,
    BackendNotSupportedError,
    ConfigurationError,
    DependencyCycleError,
    UnknownPrerequisiteError,
)
from dataqueue.lifecycle import plan_failure
from dataqueue.maintenance_sync import reclaim_stuck_jobs
from dataqueue.options import JobFilters, JobUpdates, TagFilter, normalize_job
from dataqueue.records import FailureReason, JobStatus, TagQueryMode

LEASE = timedelta(seconds=60)


def _add(b: RedisBackend, *jobs: dict[str, Any]) -> list[int]:
    return [a.id for a in b.add_jobs([normalize_job(j) for j in jobs])]


def _claim_ids(b: RedisBackend, **kw: Any) -> list[int]:
    return [j.id for j in b.claim_jobs("w", 100, lease=LEASE, **kw)]


@pytest.mark.parametrize("name", ["null", "__NONE__", "None", "nil", "false", "0", " "])
def test_values_that_look_like_nothing_are_values(backend: RedisBackend, name: str) -> None:
    first = _add(
        backend,
        {
            "job_type": name,
            "tags": [name],
            "idempotency_key": name,
            "group": name,
            "dead_letter_job_type": name,
        },
    )[0]
    again = backend.add_jobs([normalize_job({"job_type": name, "idempotency_key": name})])
    assert again[0].id == first and again[0].created is False
    plain = _add(backend, {"job_type": name})[0]  # no key: a new job, not a "null" key hit
    assert plain != first
    job = backend.get_job(first)
    assert job is not None
    assert (job.job_type, job.tags, job.idempotency_key, job.group_id) == (
        name,
        (name,),
        name,
        name,
    )
    assert backend.get_job(plain).idempotency_key is None  # type: ignore[union-attr]
    tagged = backend.get_jobs_by_tags([name], TagQueryMode.EXACT, 10, 0)
    assert [j.id for j in tagged] == [first]
    assert [j.id for j in backend.get_jobs(JobFilters(job_type=name), 10, 0, None)] == [
        plain,
        first,
    ]
    assert set(_claim_ids(backend, job_types=[name])) == {first, plain}
    assert [e.event_type.value for e in backend.get_job_events(first)].count("added") == 1


def test_add_jobs_with_an_unknown_prerequisite_writes_nothing(
    backend: RedisBackend, raw: redis.Redis, prefix: str
) -> None:
    existing = _add(backend, {"job_type": "t"})[0]
    before = sorted(raw.scan_iter(f"{prefix}*"))
    snapshot = {k: raw.dump(k) for k in before}
    with pytest.raises(UnknownPrerequisiteError, match="999999"):
        _add(
            backend,
            {"job_type": "t", "idempotency_key": "a"},
            {"job_type": "t", "depends_on": {"job_ids": [-1, existing, 999999]}},
        )
    with pytest.raises(DependencyCycleError):
        _add(
            backend,
            {"job_type": "t", "depends_on": {"job_ids": [-2]}},
            {"job_type": "t", "depends_on": {"job_ids": [-1]}},
        )
    after = sorted(raw.scan_iter(f"{prefix}*"))
    assert after == before and {k: raw.dump(k) for k in after} == snapshot


def test_batch_forward_references_and_idempotent_prerequisites(backend: RedisBackend) -> None:
    done = _add(backend, {"job_type": "t", "idempotency_key": "k"})[0]
    job = backend.claim_jobs("w", 1, lease=LEASE)[0]
    backend.complete_job(done, "w", job.lock_version)
    ids = _add(
        backend,
        {"job_type": "t", "depends_on": {"job_ids": [-2, -3]}},
        {"job_type": "t"},
        {"job_type": "t", "idempotency_key": "k"},
    )
    assert ids[2] == done
    assert backend.get_job(ids[0]).depends_on_job_ids == (ids[1], done)  # type: ignore[union-attr]
    assert _claim_ids(backend) == [ids[1]]
    backend.complete_job(ids[1], "w", 1)
    assert _claim_ids(backend) == [ids[0]]


def test_edit_run_at_moves_between_ready_and_delayed(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    future, now_job = _add(backend, {"job_type": "t", "run_at": later}, {"job_type": "t"})
    delayed = backend.keys.delayed
    assert raw.zscore(delayed, future) is not None
    assert backend.edit_job(future, JobUpdates.parse({"run_at": None}))
    assert raw.zscore(delayed, future) is None
    assert backend.edit_job(now_job, JobUpdates.parse({"run_at": later}))
    assert raw.zscore(delayed, now_job) is not None
    assert _claim_ids(backend) == [future]
    assert backend.edit_job(
        now_job,
        JobUpdates.parse(
            {"run_at": datetime.now(timezone.utc) - timedelta(seconds=1), "priority": 3}
        ),
    )
    assert _claim_ids(backend) == [now_job]


def test_tag_drain_is_live_and_counts_other_jobs_only(backend: RedisBackend) -> None:
    holder = _add(backend, {"job_type": "h", "tags": ["x", "y"]})[0]
    waiter = _add(backend, {"job_type": "t", "tags": ["x"], "depends_on": {"tags": ["x"]}})[0]
    assert _claim_ids(backend, job_types=["t"]) == []  # blocked by the holder, not by itself
    h = backend.claim_jobs("w", 1, job_types=["h"], lease=LEASE)[0]
    assert _claim_ids(backend, job_types=["t"]) == []  # processing still blocks
    backend.complete_job(holder, "w", h.lock_version)
    late = _add(backend, {"job_type": "h", "tags": ["x"]})[0]  # a new matching job re-blocks
    assert _claim_ids(backend, job_types=["t"]) == []
    assert backend.cancel_job(waiter)  # cascade target check: cancelling waiter only
    assert backend.get_job(late).status is JobStatus.PENDING  # type: ignore[union-attr]


def test_terminal_failure_of_a_drain_holder_cascades(backend: RedisBackend) -> None:
    holder = _add(backend, {"job_type": "h", "tags": ["x"], "max_attempts": 1})[0]
    other = _add(backend, {"job_type": "h", "tags": ["x"]})[0]
    waiter = _add(backend, {"job_type": "t", "depends_on": {"tags": ["x"]}})[0]
    got = {j.id: j for j in backend.claim_jobs("w", 2, job_types=["h"], lease=LEASE)}
    backend.complete_job(other, "w", got[other].lock_version)
    assert _claim_ids(backend, job_types=["t"]) == []
    plan = plan_failure(got[holder], "x", FailureReason.HANDLER_ERROR, retry_delay_seconds=0)
    out = backend.fail_job(holder, "w", got[holder].lock_version, plan)
    assert out.will_retry is False
    # The failed holder carries the drained tags: its terminal failure cascades.
    assert backend.get_job(waiter).status is JobStatus.CANCELLED  # type: ignore[union-attr]


def test_waits_do_not_consume_attempts(backend: RedisBackend) -> None:
    job_id = _add(backend, {"job_type": "t", "max_attempts": 1})[0]
    job = backend.claim_jobs("w", 1, lease=LEASE)[0]
    assert backend.wait_job(
        job_id,
        "w",
        job.lock_version,
        step_data={"s": 1},
        wait_until=datetime.now(timezone.utc),
        token_id=None,
    )
    job = backend.claim_jobs("w", 1, lease=LEASE)[0]
    assert (job.id, job.attempts) == (job_id, 1)
    token = backend.create_token(job_id, None, None)
    assert backend.wait_job(
        job_id, "w", job.lock_version, step_data={}, wait_until=None, token_id=token.id
    )
    assert _claim_ids(backend) == []
    assert backend.complete_token(token.id, '"ok"')
    job = backend.claim_jobs("w", 1, lease=LEASE)[0]
    assert (job.id, job.attempts) == (job_id, 1)
    assert backend.complete_job(job_id, "w", job.lock_version)


def test_reclaim_without_attempts_left_fails_with_worker_lost(backend: RedisBackend) -> None:
    last, spare = _add(
        backend,
        {"job_type": "t", "max_attempts": 1, "dead_letter_job_type": "dl"},
        {"job_type": "t", "max_attempts": 2},
    )
    backend.claim_jobs("w", 2, lease=timedelta(milliseconds=1))
    time.sleep(0.01)
    assert reclaim_stuck_jobs(backend, 60) == 2
    failed = backend.get_job(last)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.failure_reason is FailureReason.WORKER_LOST
    assert failed.dead_letter_job_id is not None
    assert backend.get_job(spare).status is JobStatus.PENDING  # type: ignore[union-attr]
    assert backend.client.hgetall(backend.keys.base + "gact") == {}


def test_heartbeat_keeps_a_live_job_from_being_reclaimed(backend: RedisBackend) -> None:
    job_id = _add(backend, {"job_type": "t"})[0]
    backend.claim_jobs("w", 1, lease=timedelta(milliseconds=200))
    for _ in range(3):
        time.sleep(0.1)
        assert backend.heartbeat("w", [job_id], timedelta(milliseconds=200)) == 1
        assert reclaim_stuck_jobs(backend, 60) == 0
    assert backend.heartbeat("someone-else", [job_id], LEASE) == 0


def test_wait_for_work_wakes_on_enqueue_and_on_due_time(backend: RedisBackend, prefix: str) -> None:
    other = RedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix))
    timer = threading.Timer(0.2, lambda: _add(other, {"job_type": "t"}))
    try:
        assert backend.wait_for_work(5) is True  # subscribes, then says "look again"
        timer.start()
        t0 = time.monotonic()
        assert backend.wait_for_work(5) is True
        assert time.monotonic() - t0 < 1.5
        timer.join()
        backend.claim_jobs("w", 10, lease=LEASE)
        later = datetime.now(timezone.utc) + timedelta(milliseconds=300)
        _add(other, {"job_type": "t", "run_at": later})  # a new earliest delayed job:
        assert backend.wait_for_work(5) is True  # one message, so idle workers re-arm
        t0 = time.monotonic()
        assert backend.wait_for_work(5) is True  # returns when it comes due
        assert 0.1 < time.monotonic() - t0 < 2
        backend.claim_jobs("w", 10, lease=LEASE)
        assert backend.wait_for_work(0.2) is False
    finally:
        timer.cancel()
        if timer.is_alive():
            timer.join()
        other.close()


def test_every_idle_worker_wakes_whatever_types_it_handles(prefix: str) -> None:
    workers = [
        RedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix)) for _ in range(3)
    ]
    try:
        for w in workers:
            assert w.wait_for_work(0) is True  # subscribe
        woke: list[float] = []
        t0 = time.monotonic()

        def idle(w: RedisBackend) -> None:
            if w.wait_for_work(5):
                woke.append(time.monotonic() - t0)

        threads = [threading.Thread(target=idle, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        time.sleep(0.2)
        _add(workers[0], {"job_type": "only-one-worker-handles-this"})
        for t in threads:
            t.join(timeout=10)
        assert len(woke) == 3 and max(woke) < 2
    finally:
        for w in workers:
            w.close()


def test_cron_occurrence_is_enqueued_once_by_concurrent_callers(prefix: str) -> None:
    setup = RedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix))
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    setup.add_cron_job(
        CronInput(
            "c",
            "* * * * *",
            "t",
            '{"a":1}',
            3,
            0,
            None,
            False,
            None,
            "UTC",
            True,
            None,
            None,
            None,
            None,
            past,
        )
    )
    counts: list[int] = []
    barrier = threading.Barrier(8)

    def caller() -> None:
        b = RedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix))
        barrier.wait()
        counts.append(b.enqueue_due_cron_jobs(lambda rec, after: after + timedelta(hours=1)))
        b.close()

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 1
    assert len(setup.get_all_jobs(100, 0)) == 1
    setup.close()


def test_db_option_is_not_supported(backend: RedisBackend) -> None:
    with pytest.raises(BackendNotSupportedError):
        backend.add_jobs([normalize_job({"job_type": "t"})], db=object())


def test_configuration_is_validated() -> None:
    with pytest.raises(ConfigurationError):
        RedisSettings.from_options()
    with pytest.raises(ConfigurationError, match="unknown"):
        RedisSettings.from_options(redis_config={"hots": "x"})
    with pytest.raises(ConfigurationError):
        RedisSettings.from_options("http://x")
    with pytest.raises(ConfigurationError):
        RedisSettings.from_options(REDIS_URL, key_prefix="")
    with pytest.raises(ConfigurationError):
        RedisSettings.from_options(redis_config={"port": "6379"})
    with pytest.raises(ConfigurationError, match="tls"):
        RedisSettings.from_options(redis_config={"tls": {"verify": True}})
    s = RedisSettings.from_options(
        redis_config={"host": "127.0.0.1", "port": 6379, "db": 0, "key_prefix": "p:"}
    )
    assert (s.host, s.port, s.db, s.key_prefix) == ("127.0.0.1", 6379, 0, "p:")


def test_byo_clients_are_not_closed_and_have_async_twins(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    settings = RedisSettings.from_options(client=client, key_prefix=prefix)
    b = RedisBackend(settings)
    _add(b, {"job_type": "t"})
    b.close()
    assert client.ping()
    twin = settings.async_twin()
    assert twin.client is None and twin.owns_client and twin.key_prefix == prefix

    async def use_twin() -> int:
        ab = AsyncRedisBackend(twin)
        try:
            return len(await ab.claim_jobs("w", 10, lease=LEASE))
        finally:
            await ab.close()

    assert asyncio.run(use_twin()) == 1
    client.close()


def test_connection_errors_become_backend_errors() -> None:
    b = RedisBackend(RedisSettings.from_options("redis://127.0.0.1:1/0"))
    with pytest.raises(BackendError):
        b.get_job(1)
    with pytest.raises(BackendError):
        b.add_jobs([normalize_job({"job_type": "t"})])


def test_scripts_reload_after_script_flush(backend: RedisBackend) -> None:
    _add(backend, {"job_type": "t"})
    backend.client.script_flush()
    assert len(_add(backend, {"job_type": "t"})) == 1
    assert len(_claim_ids(backend)) == 2


def test_tag_modes_match_postgres_semantics(backend: RedisBackend) -> None:
    ab, ba, a, untagged = _add(
        backend,
        {"job_type": "t", "tags": ["a", "b"]},
        {"job_type": "t", "tags": ["b", "a"]},
        {"job_type": "t", "tags": ["a"]},
        {"job_type": "t"},
    )

    def q(mode: str, *tags: str) -> set[int]:
        f = JobFilters(tags=TagFilter(tags, TagQueryMode(mode)))
        return {j.id for j in backend.get_jobs(f, 100, 0, None)}

    assert q("exact", "a", "b") == {ab, ba}
    assert q("exact", "a") == {a}
    assert q("all", "a") == {ab, ba, a}
    assert q("any", "b", "zz") == {ab, ba}
    assert q("none", "b") == {a, untagged}


def test_async_twin_round_trip(prefix: str) -> None:
    async def main() -> None:
        b = AsyncRedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix))
        try:
            added = await b.add_jobs([normalize_job({"job_type": "t", "payload": [1]})])
            jobs = await b.claim_jobs("w", 5, lease=LEASE)
            assert [j.id for j in jobs] == [added[0].id]
            assert await b.complete_jobs([(jobs[0].id, "w", jobs[0].lock_version, {"r": 1})]) == [
                True
            ]
            assert (await b.get_job(added[0].id)).output == {"r": 1}  # type: ignore[union-attr]
        finally:
            await b.close()

    asyncio.run(main())


def test_client_of_the_wrong_kind_is_rejected() -> None:
    sync_client = redis.Redis.from_url(REDIS_URL)
    with pytest.raises(ConfigurationError, match=r"redis\.asyncio\.Redis"):
        AsyncRedisBackend(RedisSettings.from_options(client=sync_client))
    sync_client.close()


def test_tls_settings_build_a_tls_client(tmp_path: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked until connect")
    s = RedisSettings.from_options(
        redis_config={
            "host": "example.invalid",
            "tls": {"ca": f"file://{ca}", "reject_unauthorized": False},
        }
    )
    client = s.build_sync_client()
    kwargs = client.connection_pool.connection_kwargs
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert (
        kwargs["ssl_cert_reqs"] == "none" and kwargs["ssl_ca_data"] == "not checked until connect"
    )
    url_client = RedisSettings.from_options(
        "redis://example.invalid:6380/2", redis_config={"tls": {}}
    ).build_sync_client()
    assert url_client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert url_client.connection_pool.connection_kwargs["db"] == 2
    with pytest.raises(ConfigurationError, match="cannot read"):
        RedisSettings.from_options(
            redis_config={"tls": {"ca": "file:///nonexistent/ca.pem"}}
        ).build_sync_client()


def test_cleanup_leaves_no_trace_of_a_deleted_job(backend: RedisBackend, raw: redis.Redis) -> None:
    job_id = _add(backend, {"job_type": "t", "tags": ["a"], "idempotency_key": "once"})[0]
    keep = _add(backend, {"job_type": "t", "tags": ["a"]})[0]
    job = next(j for j in backend.claim_jobs("w", 5, lease=LEASE) if j.id == job_id)
    token = backend.create_token(job_id, None, None)
    standalone = backend.create_token(None, None, None)
    backend.complete_token(standalone.id, None)
    assert backend.complete_job(job_id, "w", job.lock_version)
    assert backend.cleanup_old_jobs(0, [JobStatus.COMPLETED], 10) == 1
    k = backend.keys
    assert not raw.exists(k.job(job_id), k.events(job_id), k.token(token.id))
    assert backend.get_token(standalone.id) is None  # finished standalone token: cleaned
    for index in (
        k.all,
        k.job_type("t"),
        k.tag("a"),
        k.status("completed"),
        k.base + "fin:completed",
        k.base + "evidx",
    ):
        assert raw.zscore(index, job_id) is None, index
    assert raw.get(k.base + "idem:once") is None
    assert backend.get_job(keep) is not None
    # The key is free again.
    assert _add(backend, {"job_type": "t", "idempotency_key": "once"})[0] != job_id


def test_async_wait_for_work_wakes_on_enqueue(prefix: str) -> None:
    async def main() -> float:
        b = AsyncRedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix))
        producer = AsyncRedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix))
        try:
            assert await b.wait_for_work(5) is True  # subscribes
            waiter = asyncio.create_task(b.wait_for_work(5))
            await asyncio.sleep(0.1)
            t0 = time.monotonic()
            await producer.add_jobs([normalize_job({"job_type": "t"})])
            assert await waiter is True
            return time.monotonic() - t0
        finally:
            await b.close()
            await producer.close()

    assert asyncio.run(main()) < 1.5


def test_a_due_delayed_job_wakes_once_not_forever(backend: RedisBackend) -> None:
    """A busy worker (not claiming) must not see the same due job as new work on every wait."""
    past = datetime.now(timezone.utc) + timedelta(milliseconds=50)
    _add(backend, {"job_type": "t", "run_at": past})
    assert backend.wait_for_work(0) is True  # subscribes
    time.sleep(0.1)
    assert backend.wait_for_work(1) is True  # due: promoted and published
    assert backend.wait_for_work(1) is True  # the publish of that promotion
    t0 = time.monotonic()
    assert backend.wait_for_work(0.3) is False  # nothing new: it blocks
    assert time.monotonic() - t0 >= 0.25
    assert len(_claim_ids(backend)) == 1
