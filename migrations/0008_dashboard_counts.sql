-- Dashboard reads (count_jobs, the per-type oldest pending job): one ordered index walked per
-- (job type, status) cell, at most a capped number of entries each, so an overview costs the
-- same with a thousand or a million jobs. The distinct job types come from the same index by
-- a skip scan. ready_at and depends_on_tags ride along so "blocked" (pending and not claimable,
-- or behind a tag drain) is answered from the index alone (index-only scans).
CREATE INDEX IF NOT EXISTS job_queue_type_status_idx
    ON job_queue (job_type, status, created_at, id) INCLUDE (ready_at, depends_on_tags);
