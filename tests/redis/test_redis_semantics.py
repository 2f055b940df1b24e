"""Redis-only tests: those that arrange or inspect raw keys (nothing half-written, index moves,
group counters, script reload, cleanup leaving no trace) and the Redis settings (behaviour on
every backend and twin: tests/contract/)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from _redis_fixtures import REDIS_URL
from dataqueue.backends.redis.backend_async import AsyncRedisBackend
from dataqueue.backends.redis.backend_sync import RedisBackend
from dataqueue.backends.redis.config import RedisSettings
from dataqueue.backends.redis.keys import base_for_prefix
from dataqueue.backends.redis.loader import function_name
from dataqueue.errors import (
    ConfigurationError,
    DependencyCycleError,
    UnknownPrerequisiteError,
)
from dataqueue.maintenance_sync import reclaim_stuck_jobs
from dataqueue.options import JobUpdates, normalize_job
from dataqueue.records import FailureReason, JobStatus

LEASE = timedelta(seconds=60)


def _add(b: RedisBackend, *jobs: dict[str, Any]) -> list[int]:
    return [a.id for a in b.add_jobs([normalize_job(j) for j in jobs])]


def _claim_ids(b: RedisBackend, **kw: Any) -> list[int]:
    return [j.id for j in b.claim_jobs("w", 100, lease=LEASE, **kw)]


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


def test_scripts_reload_after_script_flush(backend: RedisBackend) -> None:
    backend._functions = False  # the EVALSHA form (Redis 6.2, cluster clients)
    _add(backend, {"job_type": "t"})
    backend.client.script_flush()
    assert len(_add(backend, {"job_type": "t"})) == 1
    assert len(_claim_ids(backend)) == 2


def test_function_library_reloads_after_it_is_deleted(backend: RedisBackend) -> None:
    _add(backend, {"job_type": "t"})
    assert backend._functions is True  # Redis 7: the scripts run as one function library
    library = function_name("claim").removesuffix("_claim")
    assert library in repr(backend.client.function_list(library))
    backend.client.function_delete(library)  # as FUNCTION FLUSH or a restart would
    assert len(_add(backend, {"job_type": "t"})) == 1
    assert len(_claim_ids(backend)) == 2
    assert backend._functions is True


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
    assert token is not None and standalone is not None
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


def test_dashboard_counts_name_every_type_without_a_types_set(
    backend: RedisBackend, prefix: str, raw: redis.Redis
) -> None:
    """Job types come from the counts hash (an insert writes no set of types): a type whose
    jobs all completed is still counted; a queue written by an earlier version, whose set of
    types names a type the counts hash lacks, is counted from both."""
    base = base_for_prefix(prefix)
    (added,) = backend.add_jobs([normalize_job({"job_type": "only_done"})])
    (job,) = backend.claim_jobs("w", 1, lease=timedelta(seconds=30))
    assert backend.complete_jobs([(added.id, "w", job.lock_version, None)]) == [True]
    assert not raw.exists(base + "types")
    cells = {(c.job_type, c.status.value): c.count for c in backend.count_jobs(1000)}
    assert cells == {("only_done", "completed"): 1}
    # a queue without the counts' marker is counted again from the status indexes: the types
    # cnt already names survive it
    raw.hdel(base + "cnt", "_v")
    cells = {(c.job_type, c.status.value): c.count for c in backend.count_jobs(1000)}
    assert cells == {("only_done", "completed"): 1}
    # an earlier version's layout: the type in `types`, none of its fields in cnt
    raw.hdel(base + "cnt", "pending:only_done")
    raw.sadd(base + "types", "only_done")
    cells = {(c.job_type, c.status.value): c.count for c in backend.count_jobs(1000)}
    assert cells == {("only_done", "completed"): 1}
