-- Two B-trees fewer on the hot path (each claim, completion, release and enqueue writes a new
-- row version, and every version is an entry in every index of its table).
--
-- job_queue_status_created_idx (0001) goes: job_queue_type_status_idx (0008) holds the same
-- entries per job type, and the reads by one status (get_jobs_by_status, the dashboard's
-- jobs table) merge the newest entries of each type from it, one probe per type.
DROP INDEX IF EXISTS job_queue_status_created_idx;

-- A job's events are read by job (get_job_events) and nothing reads one event by its id alone,
-- so the history is keyed by (job_id, id): one B-tree per event row instead of two (the id key
-- of 0001 and job_events_job_id_idx). The table keeps a primary key (logical replication of
-- deletes needs one). On a large history the new key is built under the table's lock: run
-- this migration when workers may pause for that long (about a second per million events).
ALTER TABLE job_events DROP CONSTRAINT IF EXISTS job_events_pkey;
ALTER TABLE job_events ADD CONSTRAINT job_events_pkey PRIMARY KEY (job_id, id);
DROP INDEX IF EXISTS job_events_job_id_idx;
