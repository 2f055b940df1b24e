-- The type-filtered claim (a processor claims only the job types it has handlers for, so this
-- is the usual claim): one ordered index per job type, in effect. The claim walks the
-- candidates of each wanted type in claim order (priority DESC, created_at, id) from the
-- entry of that type on, so what it touches does not grow with the number of pending jobs of
-- other types. ready_at is a key column, as in job_queue_claim_idx, so "ready_at <= now()" is
-- checked inside the index; jobs blocked on prerequisites (ready_at NULL) are not in it.
CREATE INDEX IF NOT EXISTS job_queue_claim_type_idx
    ON job_queue (job_type, priority DESC, created_at, id, ready_at)
    WHERE ready_at IS NOT NULL;
