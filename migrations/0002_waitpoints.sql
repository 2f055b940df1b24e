-- Wait tokens (waitpoints): a job may wait until a token is completed or times out.

CREATE TABLE IF NOT EXISTS waitpoints (
    id           varchar(255) PRIMARY KEY,
    job_id       bigint REFERENCES job_queue (id) ON DELETE CASCADE,
    status       varchar(16) NOT NULL DEFAULT 'waiting'
                 CHECK (status IN ('waiting', 'completed', 'timed_out')),
    output       jsonb,
    timeout_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    tags         text[]
);

CREATE INDEX IF NOT EXISTS waitpoints_job_id_idx ON waitpoints (job_id);
CREATE INDEX IF NOT EXISTS waitpoints_timeout_idx ON waitpoints (timeout_at)
    WHERE status = 'waiting';
CREATE INDEX IF NOT EXISTS waitpoints_finished_idx ON waitpoints (created_at)
    WHERE job_id IS NULL AND status <> 'waiting';
