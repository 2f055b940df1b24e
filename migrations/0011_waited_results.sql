-- "Jobs finished" notifications only where someone waits, and the release of dependents in a
-- function of its own.
--
-- Every completion, terminal failure and cancel used to NOTIFY the queue's done channel, for
-- wait_for_job. A transaction that notifies takes one cluster-wide lock at commit and holds it
-- until its commit record is flushed (so that notifications queue in commit order): on
-- durable settings every completion then waited for the previous one's fsync, and for every
-- enqueue's (enqueues notify the workers). Now wait_for_job marks the job it waits for
-- (result_wanted, set by the waiter's own UPDATE, so it serialises with the transition on the
-- row lock: either the waiter sees the job finished, or the transition sees the mark), and
-- only a transition of a marked job notifies.
ALTER TABLE job_queue ADD COLUMN IF NOT EXISTS result_wanted boolean NOT NULL DEFAULT false;

-- Release the dependents of p_completed, which this transaction has just completed (the rules
-- are those of 0009: one write per dependent when it becomes ready, dependents locked in id
-- order, then checked in a new snapshot). Called by dataqueue_complete_many and run under its
-- settings (a SET clause here would cost two more setting changes per completion call).
CREATE OR REPLACE FUNCTION dataqueue_release_dependents(p_completed bigint[], p_channel text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_deps bigint[];
    v_due boolean;
BEGIN
    SELECT array_agg(DISTINCT e.job_id ORDER BY e.job_id) INTO v_deps
    FROM job_dependencies e WHERE e.prerequisite_id = ANY(p_completed);
    IF v_deps IS NULL THEN
        RETURN;
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
    SELECT bool_or(ready_at IS NOT NULL) INTO v_due FROM released;
    IF v_due THEN
        PERFORM pg_notify(p_channel, '');
    END IF;
END
$$;

-- dataqueue_complete_many (0009) with the done channel: the 1-based positions of the items
-- that completed; NOTIFY p_done only when one of them is waited for. Every statement is an
-- index lookup by key: right after a DAG is enqueued job_dependencies has no statistics and a
-- flush of 50 completions planned a sequential scan of all 15,000 edges (1.6 ms of an 8 ms
-- call), hence enable_seqscan = off.
CREATE OR REPLACE FUNCTION dataqueue_complete_many(
    p_ids bigint[], p_workers text[], p_versions bigint[], p_keep boolean[],
    p_outputs jsonb[], p_channel text, p_done text)
RETURNS integer[]
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
SET enable_seqscan = off
AS $$
DECLARE
    v_done integer[];
    v_ids bigint[];
    v_waited boolean;
BEGIN
    IF cardinality(p_ids) > 1 THEN
        PERFORM 1 FROM job_queue j
        WHERE j.id = ANY(p_ids) AND j.status = 'processing'
        ORDER BY j.id FOR NO KEY UPDATE;
    END IF;
    -- A job listed twice is updated once: its other items report false.
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
        RETURNING j.id, s.ord, j.result_wanted
    ),
    ev AS (
        INSERT INTO job_events (job_id, event_type) SELECT id, 'completed' FROM upd
    )
    SELECT array_agg(ord::integer), array_agg(id), bool_or(result_wanted)
    INTO v_done, v_ids, v_waited FROM upd;
    IF v_ids IS NULL THEN
        RETURN '{}';
    END IF;
    IF v_waited AND p_done IS NOT NULL THEN
        PERFORM pg_notify(p_done, '');
    END IF;
    PERFORM dataqueue_release_dependents(v_ids, p_channel);
    RETURN v_done;
END
$$;

-- The 0009 signatures stay for workers of the previous version during an upgrade (their
-- statements notify the done channel themselves).
CREATE OR REPLACE FUNCTION dataqueue_complete_many(
    p_ids bigint[], p_workers text[], p_versions bigint[], p_keep boolean[],
    p_outputs jsonb[], p_channel text)
RETURNS integer[]
LANGUAGE sql VOLATILE
SET search_path FROM CURRENT
AS $$
    SELECT dataqueue_complete_many(p_ids, p_workers, p_versions, p_keep, p_outputs, p_channel,
                                   NULL)
$$;

CREATE OR REPLACE FUNCTION dataqueue_complete(
    p_id bigint, p_worker text, p_version bigint, p_keep boolean, p_output jsonb,
    p_channel text, p_done text)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path FROM CURRENT
AS $$
    SELECT cardinality(dataqueue_complete_many(ARRAY[p_id], ARRAY[p_worker], ARRAY[p_version],
                                               ARRAY[p_keep], ARRAY[p_output], p_channel,
                                               p_done)) > 0
$$;
