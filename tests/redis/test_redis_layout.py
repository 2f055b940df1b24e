"""Every key of a queue carries the queue's hash tag: proven on a real Redis Cluster node."""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
from _redis_fixtures import REDIS_URL, delete_prefix
from dataqueue.backends.redis.backend_sync import RedisBackend
from dataqueue.backends.redis.config import RedisSettings
from dataqueue.backends.redis.keys import base_for_prefix
from dataqueue.backends.redis.loader import SCRIPT_NAMES, function_name, script_source
from dataqueue.backends.types import CronInput, JobSearch
from dataqueue.lifecycle import plan_failure
from dataqueue.maintenance_sync import reclaim_stuck_jobs
from dataqueue.options import JobFilters, JobUpdates, normalize_job
from dataqueue.records import FailureReason, JobStatus
from redis.crc import key_slot

LEASE = timedelta(seconds=30)


def _workload(b: RedisBackend) -> None:
    """Exercise every script: enqueue with dependencies, drains, groups, claims, failures with
    dead letters and cascades, waits, tokens, edits, cancels, cron, reclaim and cleanup."""
    now = datetime.now(timezone.utc)
    ids = [
        a.id
        for a in b.add_jobs(
            [
                normalize_job(j)
                for j in [
                    {"job_type": "a", "payload": 1, "tags": ["x", "y"], "group": "g1"},
                    {"job_type": "a", "payload": 2, "depends_on": {"job_ids": [-1], "tags": ["x"]}},
                    {
                        "job_type": "b",
                        "payload": 3,
                        "idempotency_key": "k",
                        "dead_letter_job_type": "dl",
                        "max_attempts": 1,
                    },
                    {"job_type": "b", "payload": 4, "depends_on": {"job_ids": [-3]}},
                    {"job_type": "c", "payload": 5, "run_at": now + timedelta(hours=1)},
                ]
            ]
        )
    ]
    b.edit_job(ids[4], JobUpdates.parse({"run_at": None, "priority": 5, "tags": ["z"]}))
    claimed = b.claim_jobs("w", 10, group_concurrency=1, lease=LEASE)
    by_id = {j.id: j for j in claimed}
    assert b.complete_jobs([(ids[0], "w", by_id[ids[0]].lock_version, {"ok": 1})]) == [True]
    held = by_id[ids[2]]
    plan = plan_failure(held, "boom", FailureReason.HANDLER_ERROR, retry_delay_seconds=0)
    out = b.fail_job(ids[2], "w", held.lock_version, plan)
    assert out.dead_letter_job_id is not None
    assert b.get_job(ids[3]).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    nxt = b.claim_jobs("w", 10, lease=LEASE)
    job = next(j for j in nxt if j.id == ids[1])
    token = b.create_token(job.id, timedelta(minutes=5), ("t",))
    assert b.wait_job(
        job.id, "w", job.lock_version, wait_until=None, token_id=token.id, step_data={"s": 1}
    )
    assert b.complete_token(token.id, '{"v": 1}')
    b.expire_timed_out_tokens()
    b.heartbeat("w", [j.id for j in nxt], LEASE)
    for j in nxt:
        b.prolong_job(j.id, "w", j.lock_version, LEASE)
        b.set_progress(j.id, "w", j.lock_version, 50)
        b.set_step_data(j.id, "w", j.lock_version, {"a": 1})
        b.set_output(j.id, "w", j.lock_version, "[1]")
    b.retry_job(ids[2])
    b.cancel_job(ids[2])
    b.set_pending_reason_for_type("a", "no handler")
    b.edit_all_pending_jobs(JobFilters(), JobUpdates.parse({"max_attempts": 4}))
    b.cancel_all_upcoming_jobs(JobFilters(job_type="dl"))
    cron_id = b.add_cron_job(
        CronInput(
            "every-minute",
            "* * * * *",
            "c",
            "{}",
            3,
            0,
            None,
            False,
            ("cron",),
            "UTC",
            False,
            None,
            None,
            None,
            None,
            now - timedelta(minutes=1),
        )
    )
    assert b.enqueue_due_cron_jobs(lambda rec, after: after + timedelta(minutes=1)) == 1
    b.edit_cron_job(cron_id, {"priority": 2, "tags": None})
    b.set_cron_status(cron_id, "paused")  # type: ignore[arg-type]
    reclaim_stuck_jobs(b, 0)
    b.cleanup_old_jobs(0, [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED], 100)
    b.cleanup_old_job_events(0, 100)
    b.remove_cron_job(cron_id)
    soon = datetime.now(timezone.utc) + timedelta(milliseconds=50)
    b.add_jobs([normalize_job({"job_type": "d", "run_at": soon})])
    time.sleep(0.1)
    b.wait_for_work(0, "h")  # subscribes (wake-ups, and hand-offs to worker h)
    b.wait_for_work(0, "h")  # finds the due job and runs the promote script
    # A hand-off: a short claim offers its slots, a new job is claimed for them and handed
    # over with the wake-up, and what is handed and not taken goes back at the end.
    offer = {"job_types": ["hh"], "lease": LEASE, "offer": timedelta(seconds=5)}
    assert b.claim_jobs("h", 5, **offer) == []  # type: ignore[arg-type]
    b.add_jobs([normalize_job({"job_type": "hh"})])
    assert b.wait_for_work(5, "h")
    assert len(b.claim_jobs("h", 5, **offer)) == 1  # type: ignore[arg-type]
    b.add_jobs([normalize_job({"job_type": "hh"})])
    assert b.wait_for_work(5, "h")
    b.end_claims("h")
    b.get_jobs(JobFilters(job_type="a"), 10, 0, None)
    b.get_jobs_by_tags(["x"], "any", 10, 0)  # type: ignore[arg-type]
    assert b.count_jobs(1000)
    b.recent_finished(now - timedelta(hours=1), 10)
    b.search_jobs(JobSearch(JobFilters(job_type="a"), error_contains="boom"), 10, None, 100)
    b.get_tag_holders(["x"], None, 10)
    b.get_jobs_by_ids(ids)  # more than a few jobs: one script reply
    b.get_dependents(ids, 10)


def _slots(client: Any, prefix: str) -> set[int]:
    return {key_slot(k.encode()) for k in client.scan_iter(f"{prefix}*", count=1000)}


def test_base_key_carries_a_tag_derived_from_the_prefix() -> None:
    assert base_for_prefix("dq:") == "dq:{dq}:"
    assert base_for_prefix("app") == "app{app}:"
    assert base_for_prefix("app:{orders}:") == "app:{orders}:"
    assert key_slot(b"a:{a}:j:1") != key_slot(b"b:{b}:j:1")


def test_every_key_of_a_queue_is_in_one_slot(
    backend: RedisBackend, prefix: str, raw: redis.Redis
) -> None:
    _workload(backend)
    slots = _slots(raw, prefix)
    assert slots == {key_slot(base_for_prefix(prefix).encode())}


_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESC = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}


def _unquote(text: str) -> str:
    """Undo MONITOR's quoting of one argument (sdscatrepr)."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "x":
                out.append(chr(int(text[i + 2 : i + 4], 16)))
                i += 4
                continue
            out.append(_ESC.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _monitor(url: str, run: Any) -> list[list[str]]:
    """Run ``run()`` and return every command the server executed, from clients and from
    Lua scripts (the latter tagged ``lua``): ``[source, command, args...]``."""
    mon = redis.Redis.from_url(url, decode_responses=True)
    conn: Any = mon.connection_pool.get_connection()
    conn.send_command("MONITOR")
    assert conn.read_response() == "OK"
    lines: list[str] = []
    marker = f"dq-monitor-stop-{uuid.uuid4().hex}"

    def reader() -> None:
        while True:
            line = str(conn.read_response())
            if marker in line:
                return
            lines.append(line)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        run()
    finally:
        with redis.Redis.from_url(url) as other:
            other.echo(marker)
        thread.join(timeout=30)
        conn.disconnect()
        mon.close()
    return [
        ["lua" if " lua]" in ln else "client", *(_unquote(a) for a in _ARG.findall(ln))]
        for ln in lines
    ]


def test_scripts_touch_only_hash_tagged_keys(cluster_url: str) -> None:
    """Run every script on a Redis Cluster node while MONITOR records each command the
    scripts execute; the server itself (COMMAND GETKEYS) names the keys of each command, and
    every one of them must be in the queue's slot."""
    prefix = f"dqc_{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(cluster_url, decode_responses=True)
    backend = RedisBackend(RedisSettings.from_options(client=client, key_prefix=prefix))
    slot = key_slot(base_for_prefix(prefix).encode())
    try:
        monitored = _monitor(cluster_url, lambda: _workload(backend))
        commands = [c[1:] for c in monitored if c[0] == "lua"]
        assert len(commands) > 200
        # Every script of the backend ran in the workload (as library functions on Redis 7).
        called = {
            c[2] for c in monitored if c[0] == "client" and c[1].upper() in ("EVALSHA", "FCALL")
        }
        shas = {hashlib.sha1(script_source(n).encode()).hexdigest() for n in SCRIPT_NAMES}
        assert called in (shas, {function_name(n) for n in SCRIPT_NAMES})
        seen: set[str] = set()
        checked = 0
        for cmd in commands:
            seen.add(cmd[0].upper())
            try:
                keys = client.command_getkeys(*cmd)
            except redis.ResponseError:
                keys = []  # a command without keys (TIME)
            for key in map(str, keys):
                assert key.startswith(prefix), cmd
                assert key_slot(key.encode()) == slot, cmd
                checked += 1
        assert checked > 200
        assert {"HSET", "ZADD", "RPUSH", "SADD", "DEL", "INCRBY", "TIME"} <= seen
        assert len(_slots(client, prefix)) == 1
    finally:
        backend.close()
        delete_prefix(cluster_url, prefix)
        client.close()


def _state(b: RedisBackend) -> list[tuple[Any, ...]]:
    jobs = b.get_all_jobs(100, 0)
    return sorted((j.id, j.job_type, j.status, j.attempts, j.lock_version) for j in jobs)


def test_script_and_function_forms_agree(prefix: str) -> None:
    """The same workload through EVALSHA (Redis 6.2, cluster clients) and FCALL (Redis 7)
    leaves the same jobs in the same states."""
    states = []
    for form, use_functions in (("s", False), ("f", True)):
        p = f"{prefix}{form}:"
        b = RedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=p))
        b._functions = use_functions
        try:
            _workload(b)
            assert b._functions is use_functions
            states.append(_state(b))
        finally:
            b.close()
            delete_prefix(REDIS_URL, p)
    assert states[0] == states[1] and len(states[0]) >= 4


def test_two_prefixes_are_two_queues(prefix: str) -> None:
    other = f"{prefix}other:"
    a = RedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=prefix))
    b = RedisBackend(RedisSettings.from_options(REDIS_URL, key_prefix=other))
    try:
        a.add_jobs([normalize_job({"job_type": "t"})])
        assert b.claim_jobs("w", 10, lease=LEASE) == []
        assert len(a.claim_jobs("w", 10, lease=LEASE)) == 1
    finally:
        a.close()
        b.close()
        delete_prefix(REDIS_URL, other)


def test_works_through_a_redis_cluster_client(cluster_url: str) -> None:
    """The same workload through redis-py's cluster client, which routes every command and
    script by its keys' slot."""
    from redis.cluster import RedisCluster

    prefix = f"dqcc_{uuid.uuid4().hex[:8]}:"
    client = RedisCluster.from_url(cluster_url)
    backend = RedisBackend(RedisSettings.from_options(client=client, key_prefix=prefix))
    try:
        _workload(backend)
        backend.wait_for_work(0.01)  # BLPOP routed by its key
    finally:
        backend.close()
        delete_prefix(cluster_url, prefix)
        client.close()
