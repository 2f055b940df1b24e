-- The release of dependents in dataqueue_complete_many (0009) looks their edges up by
-- prerequisite. Right after a DAG is enqueued, job_dependencies has no statistics yet and the
-- planner estimated thousands of rows for a batch of ids: it read the whole edge table on
-- every completion (15,000 edges: 1.6 ms of an 8 ms completion of 50 jobs). Every statement
-- of the function is an index lookup by key, so sequential scans are ruled out for it, as
-- for dataqueue_tag_drain_clear (0001).
ALTER FUNCTION dataqueue_complete_many(bigint[], text[], bigint[], boolean[], jsonb[], text)
    SET enable_seqscan = off;
