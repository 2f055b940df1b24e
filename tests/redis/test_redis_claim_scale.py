"""Every Redis claim stays flat whatever is pending (issues 11 and 15): with 200,000 pending
jobs in the way — 50,000 of other types, and of the wanted type 50,000 blocked on a
prerequisite, 50,000 scheduled a day ahead and 50,000 in 20 groups each at its cap — a claim
runs a bounded number of Redis commands (counted by the server: ``INFO commandstats`` counts
the commands a script runs) and still finds the few due jobs. The jobs in the way rank first
(priority 9): a claim that stepped over them would run hundreds of thousands of commands.

A private redis-server (its own port) keeps the counts to this test alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from _redis_fixtures import private_redis
from dataqueue import init_job_queue

LEASE = timedelta(seconds=30)
EACH = 50_000
GROUPS = 20
CHUNK = 5_000  # one add_jobs script each: short enough for a busy server
#: One claim: the promotion probe, a look at each type's head (and at each capped group's
#: head, skipped), about a dozen commands per claimed job. Far from EACH.
MAX_COMMANDS = 400
MAX_COMMANDS_ALL_TYPES = 700


@pytest.fixture(scope="module")
def private_url() -> Iterator[str]:
    with private_redis(prefix="dq-redis-scale-") as (url, _client):
        yield url


def _commands(client: Any) -> int:
    """Commands run since the last CONFIG RESETSTAT, scripts' own commands included (the
    EVALSHA calls themselves, and the stats commands, are not counted)."""
    stats = client.info("commandstats")
    skip = {"cmdstat_evalsha", "cmdstat_eval", "cmdstat_info", "cmdstat_config"}
    return sum(int(v["calls"]) for k, v in stats.items() if k not in skip)


def _load(q: Any) -> None:
    later = datetime.now(timezone.utc) + timedelta(days=1)
    gate = q.add_job("gate", {}, run_at=later + timedelta(days=365))
    shapes = [
        lambda i: {"job_type": f"other_{i % 20}", "payload": {}, "priority": 9},
        lambda i: {"job_type": "wanted", "payload": {}, "priority": 9,
                   "depends_on": {"job_ids": [gate]}},
        lambda i: {"job_type": "wanted", "payload": {}, "priority": 9, "run_at": later},
        lambda i: {"job_type": "wanted", "payload": {}, "priority": 9,
                   "group": {"id": f"g{i % GROUPS}"}},
    ]  # fmt: skip
    for make in shapes:
        for lo in range(0, EACH, CHUNK):
            q.add_jobs([make(i) for i in range(lo, lo + CHUNK)])


def test_claims_run_bounded_commands_with_200k_pending_in_the_way(private_url: str) -> None:
    q = init_job_queue(private_url, key_prefix="scale:")
    client: Any = redis.Redis.from_url(private_url, decode_responses=True)
    try:
        _load(q)
        backend = q._backend
        held = backend.claim_jobs("holder", GROUPS, job_types=["wanted"], group_concurrency=1,
                                  lease=LEASE)  # fmt: skip
        assert len(held) == GROUPS and len({j.group_id for j in held}) == GROUPS
        due = [q.add_job("wanted", {}) for _ in range(3)]
        open_group = [q.add_job("wanted", {}, group={"id": "open"}) for _ in range(2)]

        client.config_resetstat()
        got = backend.claim_jobs("w", 10, job_types=["wanted"], group_concurrency=1, lease=LEASE)
        used = _commands(client)
        print(f"capped claim: {used} commands")
        assert sorted(j.id for j in got) == sorted([*due, open_group[0]])
        assert used <= MAX_COMMANDS, used
        backend.complete_jobs([(j.id, "w", j.lock_version, None) for j in got])

        # Without a cap the grouped jobs are claimable: 10 of them.
        client.config_resetstat()
        got = backend.claim_jobs("w", 10, job_types=["wanted"], lease=LEASE)
        used = _commands(client)
        print(f"typed claim: {used} commands")
        assert len(got) == 10 and all(j.job_type == "wanted" for j in got)
        assert used <= MAX_COMMANDS, used

        # No type filter: every type's head is looked at once.
        client.config_resetstat()
        got = backend.claim_jobs("w", 10, lease=LEASE)
        used = _commands(client)
        print(f"untyped claim: {used} commands")
        assert len(got) == 10
        assert used <= MAX_COMMANDS_ALL_TYPES, used
    finally:
        client.close()
        q.close()
