"""Every claim stays flat whatever is pending (issue 15): with 200,000 pending jobs in the way —
50,000 of other types, and of the wanted type 50,000 blocked on a prerequisite, 50,000
scheduled a day ahead and 50,000 in 20 groups each at its cap — each claim touches a bounded
number of buffers (``EXPLAIN (ANALYZE, BUFFERS)``, not timings) and still finds the few due
jobs. The jobs in the way rank first (priority 9, created first): a claim that stepped over
them would touch thousands of buffers. Claims of migrations/0009_ready_sets.sql.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import psycopg
from dataqueue.backends.postgres.backend_sync import PostgresBackend
from dataqueue.backends.postgres.sql import PROMOTE_BATCH

from .helpers import add, bulk_load, explain, plan_buffers, plan_nodes

LEASE = timedelta(seconds=30)
EACH = 50_000
GROUPS = 20

BULK_LOAD = f"""
ALTER TABLE job_queue SET (autovacuum_enabled = false);
INSERT INTO job_queue (job_type, payload, priority, ready_at)
SELECT 'other_' || (g % 20), '{{}}', 9, now() FROM generate_series(1, {EACH}) g;
INSERT INTO job_queue (job_type, payload, ready_at) VALUES ('gate', '{{}}', NULL);
INSERT INTO job_queue (job_type, payload, priority, ready_at, depends_on_job_ids,
                       unmet_dependencies)
SELECT 'wanted', '{{}}', 9, NULL, ARRAY[(SELECT id FROM job_queue WHERE job_type = 'gate')], 1
FROM generate_series(1, {EACH}) g;
INSERT INTO job_dependencies (prerequisite_id, job_id)
SELECT j.depends_on_job_ids[1], j.id FROM job_queue j WHERE j.depends_on_job_ids IS NOT NULL;
INSERT INTO job_queue (job_type, payload, priority, run_at, ready_at)
SELECT 'wanted', '{{}}', 9, now() + interval '1 day', now() + interval '1 day'
FROM generate_series(1, {EACH}) g;
INSERT INTO job_queue (job_type, payload, priority, group_id, ready_at)
SELECT 'wanted', '{{}}', 9, 'g' || (g % {GROUPS}), now() FROM generate_series(1, {EACH}) g;
"""

#: Generous bounds for one claim of 10: index descents per type (and, with a cap, one probe
#: per group), the claimed rows and their event rows. Stepping over the 50,000 jobs of any
#: shape would touch more than a thousand.
MAX_BUFFERS = 400
#: The claim without a type filter walks each of the 22 types with due jobs.
MAX_BUFFERS_ALL_TYPES = 900


def _no_seq_scan(plan: dict[str, Any]) -> None:
    seq = [
        n
        for n in plan_nodes(plan)
        if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "job_queue"
    ]
    assert not seq, json.dumps(plan)[:3000]


def test_claims_are_bounded_with_200k_pending_in_the_way(
    backend: PostgresBackend, pg_url: str
) -> None:
    bulk_load(backend, pg_url, BULK_LOAD)
    # Every group at its cap (1): another worker holds one job of each.
    held = backend.claim_jobs("holder", GROUPS, job_types=["wanted"], group_concurrency=1,
                              lease=LEASE)  # fmt: skip
    assert len(held) == GROUPS and len({j.group_id for j in held}) == GROUPS
    due = [add(backend, "wanted") for _ in range(3)]
    open_group = [add(backend, "wanted", group={"id": "open"}) for _ in range(2)]
    base = {"worker": "w", "lease": LEASE, "limit": 10, "channel": backend.channel}
    capped = {**base, "types": ["wanted"], "cap": 1, "full": [], "seen": []}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for analysed in (False, True):
            if analysed:
                conn.execute("ANALYZE job_queue")
            # Capped claim: the 3 ungrouped due jobs and the head of the open group; the 20
            # capped groups cost one probe each, the blocked and scheduled jobs nothing.
            plan = explain(conn, backend._q_candidates[True], capped, "ANALYZE, BUFFERS")
            print(f"capped claim (analysed={analysed}): {plan_buffers(plan)} buffers")
            _no_seq_scan(plan)
            assert int(plan["Actual Rows"]) == 4, json.dumps(plan)[:3000]
            assert plan_buffers(plan) <= MAX_BUFFERS, (plan_buffers(plan), json.dumps(plan)[:3000])
            # Without a cap, the grouped jobs are claimable: 10 of them, in claim order.
            plan = explain(
                conn, backend._q_claim[True], {**base, "types": ["wanted"]}, "ANALYZE, BUFFERS"
            )
            print(f"typed claim (analysed={analysed}): {plan_buffers(plan)} buffers")
            _no_seq_scan(plan)
            assert int(plan["Actual Rows"]) == 10
            assert plan_buffers(plan) <= MAX_BUFFERS, (plan_buffers(plan), json.dumps(plan)[:3000])
            # No type filter: one walk per type with due jobs.
            plan = explain(
                conn, backend._q_claim[False], {**base, "types": None}, "ANALYZE, BUFFERS"
            )
            print(f"untyped claim (analysed={analysed}): {plan_buffers(plan)} buffers")
            _no_seq_scan(plan)
            assert int(plan["Actual Rows"]) == 10
            assert plan_buffers(plan) <= MAX_BUFFERS_ALL_TYPES, plan_buffers(plan)
            plan = explain(conn, backend._sql.next_due, {"since": 3600}, "ANALYZE, BUFFERS")
            print(f"next_due (analysed={analysed}): {plan_buffers(plan)} buffers")
            assert plan_buffers(plan) <= 10, json.dumps(plan)[:2000]
    # For real: the capped claim takes the due jobs and one job of the open group.
    got = backend.claim_jobs("w", 10, job_types=["wanted"], group_concurrency=1, lease=LEASE)
    assert sorted(j.id for j in got) == sorted([*due, open_group[0]])
    backend.complete_jobs([(j.id, "w", j.lock_version, None) for j in got])
    # Scheduled jobs whose time came (made due here, in id order): a claim takes the first
    # ones directly and promotes a bounded batch of the rest into the claim indexes.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "UPDATE job_queue SET ready_at = updated_at + id * interval '1 microsecond'"
                " WHERE id IN (SELECT id FROM job_queue WHERE run_at > now() ORDER BY id"
                f" LIMIT {PROMOTE_BATCH + 15}) RETURNING id"
            )
        ]
    ids.sort()
    next_due = backend._one(backend._sql.next_due, {"since": 3600})[0]
    assert next_due is not None and float(next_due) <= 0  # due, not promoted yet
    first = backend.claim_jobs("w", 5, job_types=["wanted"], lease=LEASE)
    assert [j.id for j in first] == ids[:5]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM job_queue WHERE ready_at > updated_at AND ready_at <= now()"
        ).fetchone()
    assert row is not None and int(row[0]) == 10  # 100 promoted, 10 left for the next claim
    # Promoted jobs are claimed in claim order (priority 9, then id), with or without a cap.
    second = backend.claim_jobs("w", 5, job_types=["wanted"], lease=LEASE)
    assert [j.id for j in second] == ids[5:10]
    third = backend.claim_jobs("w", 5, job_types=["wanted"], group_concurrency=1, lease=LEASE)
    assert [j.id for j in third] == ids[10:15]
