-- Completing a batch of jobs in one call (the processor group-commits its completions): the
-- same transitions as dataqueue_complete (0004) for every item, in one round trip and one
-- transaction. Items are (id, worker, lock version, keep output?, output); the result lists
-- the 1-based positions of the items that were completed (the fence held).
--
-- Row locks are taken in id order (jobs, then dependents): other multi-row writers (add_jobs
-- locking prerequisites FOR SHARE, heartbeats, other batches) lock in id order too, so two of
-- them can never wait on each other in opposite orders.
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
    v_counts integer[];
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
    -- New snapshot (it sees dependents added by transactions the update waited for): each
    -- dependent loses one unmet prerequisite per completed one; those left with none become
    -- claimable (ready_at) and idle workers are woken.
    SELECT array_agg(c.job_id ORDER BY c.job_id), array_agg(c.n ORDER BY c.job_id)
    INTO v_deps, v_counts
    FROM (SELECT e.job_id, count(*)::integer AS n FROM job_dependencies e
          WHERE e.prerequisite_id = ANY(v_ids) GROUP BY e.job_id) c;
    IF v_deps IS NULL THEN
        RETURN v_done;
    END IF;
    PERFORM 1 FROM job_queue d WHERE d.id = ANY(v_deps) ORDER BY d.id FOR NO KEY UPDATE;
    WITH released AS (
        UPDATE job_queue d
        SET unmet_dependencies = greatest(d.unmet_dependencies - c.n, 0),
            ready_at = CASE WHEN d.unmet_dependencies <= c.n AND d.status = 'pending'
                            THEN d.run_at ELSE d.ready_at END
        FROM unnest(v_deps, v_counts) AS c(id, n)
        WHERE d.id = c.id AND d.unmet_dependencies > 0
        RETURNING d.ready_at, d.unmet_dependencies
    )
    SELECT count(*) INTO v_released FROM released
    WHERE unmet_dependencies = 0 AND ready_at IS NOT NULL;
    IF v_released > 0 THEN
        PERFORM pg_notify(p_channel, '');
    END IF;
    RETURN v_done;
END
$$;
