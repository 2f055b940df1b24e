-- Unique jobs (add_job(unique_while="active" / unique_for=...)): the holder of a unique key keeps
-- it with its scope. add_jobs serialises adds of one key with a transaction-level advisory lock,
-- looks the holder up through this index and treats the key as free once the holder left its
-- scope (finished, for "active"; older than unique_until, for a period). Old holders keep their
-- key, so the index is not unique.
ALTER TABLE job_queue
    ADD COLUMN IF NOT EXISTS unique_key text,
    ADD COLUMN IF NOT EXISTS unique_active boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS unique_until timestamptz;

CREATE INDEX IF NOT EXISTS job_queue_unique_key_idx
    ON job_queue (unique_key, id DESC) WHERE unique_key IS NOT NULL;
