-- Claim indexes that stay flat at 1,000,000 pending jobs whatever the shape of the queue
-- (issue 15), and fewer of them on the hot path: an ungrouped job is in one claim index
-- (0001 and 0006 put every job in two).
--
-- Due vs delayed without a new column: every statement that sets ready_at also sets
-- updated_at = now() (or leaves a past ready_at), so "ready_at <= updated_at" holds exactly
-- when the job was due when last written, and "ready_at > updated_at" when it was written with
-- a future time (run_at, retry time, time wait). Both are immutable, so they can be index
-- predicates. Jobs scheduled in the future are then not in the claim indexes at all (they sat
-- in front of due jobs created after them and every claim walked them); the claim promotes
-- delayed jobs whose time came (sets updated_at, which moves them into the claim indexes) in
-- bounded batches, through job_queue_delayed_idx.
--
-- Three claim indexes, by job type first (a processor claims the types it handles, one walk
-- per type, whatever else is pending):
--   job_queue_ready_idx          ungrouped due jobs, claim order;
--   job_queue_ready_grouped_idx  grouped due jobs, claim order (claims without a group cap);
--   job_queue_ready_group_idx    grouped due jobs per group, claim order (claims with a cap:
--                                a group at its cap is skipped as a whole, in one probe).
-- Blocked jobs (ready_at NULL) are in none of them. priority/created_at/id are keys and
-- nothing else: "ready_at <= now()" is checked on the row the claim reads anyway.
DROP INDEX IF EXISTS job_queue_claim_idx;
DROP INDEX IF EXISTS job_queue_claim_type_idx;

CREATE INDEX IF NOT EXISTS job_queue_ready_idx
    ON job_queue (job_type, priority DESC, created_at, id)
    WHERE ready_at <= updated_at AND group_id IS NULL;

CREATE INDEX IF NOT EXISTS job_queue_ready_grouped_idx
    ON job_queue (job_type, priority DESC, created_at, id)
    WHERE ready_at <= updated_at AND group_id IS NOT NULL;

CREATE INDEX IF NOT EXISTS job_queue_ready_group_idx
    ON job_queue (job_type, group_id, priority DESC, created_at, id)
    WHERE ready_at <= updated_at AND group_id IS NOT NULL;

CREATE INDEX IF NOT EXISTS job_queue_delayed_idx
    ON job_queue (ready_at) WHERE ready_at > updated_at;

-- Completion (0004, 0005), one code path for one job and for a batch. Releasing dependents
-- costs one write per dependent, when it becomes ready, instead of one per edge: a dependent
-- is locked (in id order, as before: other multi-row writers lock in id order too), then, in
-- a new snapshot, released if every one of its prerequisites is completed (a prerequisite
-- cleaned up after completing is gone: that counts as completed). Two prerequisites
-- completing at once serialise on the dependent's lock, and the second sees the first's
-- commit. unmet_dependencies is only ever read as "zero or not": set to 0 on release, left as
-- it was (an upper bound) before. A released dependent also gets updated_at = now(), so it
-- is due at once when its run_at has passed (migration comment above) and delayed otherwise.
CREATE OR REPLACE FUNCTION dataqueue_complete_many(
    p_ids bigint[], p_workers text[], p_versions bigint[], p_keep boolean[],
    p_outputs jsonb[], p_channel text)
RETURNS integer[]
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_done integer[];
    v_ids bigint[];
    v_deps bigint[];
    v_released integer;
BEGIN
    IF cardinality(p_ids) > 1 THEN
        PERFORM 1 FROM job_queue j
        WHERE j.id = ANY(p_ids) AND j.status = 'processing'
        ORDER BY j.id FOR NO KEY UPDATE;
    END IF;
    -- A job listed twice is updated once (by one of its items): its other items report false,
    -- as a second complete_job call would.
    WITH upd AS (
        UPDATE job_queue j
        SET status = 'completed', completed_at = now(), updated_at = now(),
            output = CASE WHEN s.keep THEN j.output ELSE s.output END,
            step_data = '{}'::jsonb, wait_until = NULL, wait_token_id = NULL,
            ready_at = NULL, resume_claim = false,
            locked_at = NULL, locked_by = NULL, lease_expires_at = NULL, heartbeat_at = NULL
        FROM unnest(p_ids, p_workers, p_versions, p_keep, p_outputs) WITH ORDINALITY
             AS s(id, worker, version, keep, output, ord)
        WHERE j.id = s.id AND j.locked_by = s.worker AND j.lock_version = s.version
          AND j.status = 'processing'
        RETURNING j.id, s.ord
    ),
    ev AS (
        INSERT INTO job_events (job_id, event_type) SELECT id, 'completed' FROM upd
    )
    SELECT array_agg(ord::integer), array_agg(id) INTO v_done, v_ids FROM upd;
    IF v_ids IS NULL THEN
        RETURN '{}';
    END IF;
    -- New snapshot (it sees dependents added by transactions the update waited for).
    SELECT array_agg(DISTINCT e.job_id ORDER BY e.job_id) INTO v_deps
    FROM job_dependencies e WHERE e.prerequisite_id = ANY(v_ids);
    IF v_deps IS NULL THEN
        RETURN v_done;
    END IF;
    PERFORM 1 FROM job_queue d
    WHERE d.id = ANY(v_deps) AND d.unmet_dependencies > 0
    ORDER BY d.id FOR NO KEY UPDATE;
    WITH released AS (
        UPDATE job_queue d
        SET unmet_dependencies = 0,
            ready_at = CASE WHEN d.status = 'pending' THEN d.run_at ELSE d.ready_at END,
            updated_at = CASE WHEN d.status = 'pending' THEN now() ELSE d.updated_at END
        WHERE d.id = ANY(v_deps) AND d.unmet_dependencies > 0
          AND NOT EXISTS (SELECT 1 FROM job_queue p
                          WHERE p.id = ANY(d.depends_on_job_ids) AND p.status <> 'completed')
        RETURNING d.ready_at
    )
    SELECT count(*) INTO v_released FROM released WHERE ready_at IS NOT NULL;
    IF v_released > 0 THEN
        PERFORM pg_notify(p_channel, '');
    END IF;
    RETURN v_done;
END
$$;

CREATE OR REPLACE FUNCTION dataqueue_complete(
    p_id bigint, p_worker text, p_version bigint, p_keep boolean, p_output jsonb,
    p_channel text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN cardinality(dataqueue_complete_many(ARRAY[p_id], ARRAY[p_worker], ARRAY[p_version],
                                               ARRAY[p_keep], ARRAY[p_output], p_channel)) > 0;
END
$$;
