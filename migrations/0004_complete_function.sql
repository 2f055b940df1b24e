-- Completing a job is the hottest write after enqueue; it needs two snapshots: the fenced
-- update (which may wait for a transaction adding dependents of this job, holding a lock on
-- it) and then the release of the dependents, which must see the rows that transaction
-- committed. A VOLATILE plpgsql function takes a fresh snapshot per statement, so both run
-- in one call: one round trip and one transaction.
CREATE OR REPLACE FUNCTION dataqueue_complete(
    p_id bigint, p_worker text, p_version bigint, p_keep boolean, p_output jsonb,
    p_channel text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_released integer;
BEGIN
    UPDATE job_queue
    SET status = 'completed', completed_at = now(), updated_at = now(),
        output = CASE WHEN p_keep THEN output ELSE p_output END,
        step_data = '{}'::jsonb, wait_until = NULL, wait_token_id = NULL,
        ready_at = NULL, resume_claim = false,
        locked_at = NULL, locked_by = NULL, lease_expires_at = NULL, heartbeat_at = NULL
    WHERE id = p_id AND locked_by = p_worker AND lock_version = p_version
      AND status = 'processing';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO job_events (job_id, event_type) VALUES (p_id, 'completed');
    -- New snapshot: one fewer unmet prerequisite for each dependent; a dependent whose last
    -- prerequisite this was becomes claimable (ready_at) and idle workers are woken.
    WITH released AS (
        UPDATE job_queue d
        SET unmet_dependencies = d.unmet_dependencies - 1,
            ready_at = CASE WHEN d.unmet_dependencies = 1 AND d.status = 'pending'
                            THEN d.run_at ELSE d.ready_at END
        FROM job_dependencies e
        WHERE e.prerequisite_id = p_id AND d.id = e.job_id AND d.unmet_dependencies > 0
        RETURNING d.ready_at, d.unmet_dependencies
    )
    SELECT count(*) INTO v_released FROM released
    WHERE unmet_dependencies = 0 AND ready_at IS NOT NULL;
    IF v_released > 0 THEN
        PERFORM pg_notify(p_channel, '');
    END IF;
    RETURN true;
END
$$;
