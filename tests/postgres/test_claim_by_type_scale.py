"""The type-filtered claim stays flat at scale (issue 11): with 200,000 claimable jobs of other
types (plus scheduled-in-future and blocked jobs of the wanted type), a claim filtered to one
type touches a bounded number of buffers and index entries, checked with
``EXPLAIN (ANALYZE, BUFFERS)`` — not with timings. The unfiltered claim keeps its own index.
"""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
from dataqueue.backends.postgres.backend_sync import PostgresBackend

from .helpers import bulk_load, explain, plan_buffers, plan_nodes

TYPE_INDEX = "job_queue_ready_idx"  # migrations/0009_ready_sets.sql
OTHERS = 200_000

# Other types at every priority, some above the wanted type's; of the wanted type: 1,000
# scheduled in the future and 1,000 blocked (these two shapes grow in issue 15).
BULK_LOAD = f"""
ALTER TABLE job_queue SET (autovacuum_enabled = false);
INSERT INTO job_queue (job_type, payload, priority, run_at, ready_at)
SELECT 'other_' || (g % 50), '{{}}', g % 10, now(), now()
FROM generate_series(1, {OTHERS}) g;
INSERT INTO job_queue (job_type, payload, priority, run_at, ready_at)
SELECT 'wanted', '{{}}', 5, now() + interval '1 day', now() + interval '1 day'
FROM generate_series(1, 1000) g;
INSERT INTO job_queue (job_type, payload, priority, run_at, ready_at, depends_on_job_ids,
                       unmet_dependencies)
SELECT 'wanted', '{{}}', 9, now(), NULL, ARRAY[1::bigint], 1
FROM generate_series(1, 1000) g;
"""

#: Generous bounds for claiming a handful of jobs: an index descent plus the claimed rows and
#: their event rows. The scan this replaced touched thousands of buffers at 200,000 pending.
MAX_BUFFERS = 400
MAX_INDEX_ROWS = 1_100  # (the 1,000 future jobs of the type are not in it since 0009)


def test_type_filtered_claim_is_bounded_at_200k_other_pending(
    backend: PostgresBackend, pg_url: str
) -> None:
    bulk_load(backend, pg_url, BULK_LOAD)
    from dataqueue import init_job_queue

    q = init_job_queue(pg_url)
    try:
        wanted = [q.add_job("wanted", {"i": i}) for i in range(3)]
        params = {
            "worker": "w",
            "lease": timedelta(seconds=30),
            "limit": 10,
            "channel": backend.channel,
        }
        with psycopg.connect(pg_url, autocommit=True) as conn:
            for analysed in (False, True):
                if analysed:
                    conn.execute("ANALYZE job_queue")
                plan = explain(
                    conn,
                    backend._q_claim[True],
                    {**params, "types": ["wanted"]},
                    "ANALYZE, BUFFERS",
                )
                nodes = plan_nodes(plan)
                scans = [n for n in nodes if n.get("Index Name") == TYPE_INDEX]
                assert scans, f"filtered claim did not use {TYPE_INDEX}: {json.dumps(plan)[:3000]}"
                seq = [n for n in nodes if n["Node Type"] == "Seq Scan"]
                assert not [n for n in seq if n.get("Relation Name") == "job_queue"], seq
                scan = scans[0]
                touched = int(scan.get("Actual Rows", 0)) + int(
                    scan.get("Rows Removed by Filter", 0)
                )
                assert touched <= MAX_INDEX_ROWS, (touched, json.dumps(scan)[:2000])
                assert plan_buffers(plan) <= MAX_BUFFERS, (
                    plan_buffers(plan),
                    json.dumps(plan)[:3000],
                )
                # the rolled-back claim found exactly the three due jobs of the type
                assert sum(int(n.get("Actual Rows", 0)) for n in nodes if n is scan) == 3
            # The unfiltered claim walks the same index, once per type with due jobs.
            plan = explain(
                conn, backend._q_claim[False], {**params, "types": None}, "ANALYZE, BUFFERS"
            )
            assert any(n.get("Index Name") == TYPE_INDEX for n in plan_nodes(plan))
        # And for real: a filtered claim gets the due jobs of its type, in claim order.
        claimed = backend.claim_jobs("w", 10, job_types=["wanted"], lease=timedelta(seconds=30))
        assert [j.id for j in claimed] == wanted
        # Several types (one repeated): each is walked once, claim order holds across them.
        more = q.add_job("wanted", {}, priority=1)
        both = backend.claim_jobs(
            "w", 5, job_types=["other_3", "wanted", "other_3"], lease=timedelta(seconds=30)
        )
        assert len(both) == 5 and all(j.job_type == "other_3" for j in both)
        assert all(j.priority == 3 for j in both)  # other_3 jobs outrank the new one
        assert q.get_job(more).status.value == "pending"
    finally:
        q.close()
