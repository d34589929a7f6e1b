-- Cluster mode (ADR 19): a scheduler looks, every few seconds, for QUEUED jobs submitted lately that it was
-- not told of (their message went to a scheduler that had died or been deposed). The state index also
-- orders by submission, so that this reads a range, not the whole queue; queries by state alone use it too.
DROP INDEX job_state;
CREATE INDEX job_state ON job (state, submitted_at);
