-- Cluster mode (ADR 19): when a job last entered the queue (its submission, or a re-queue after a
-- preemption, a lost node or a restart). A scheduler looks every few seconds for QUEUED jobs it was not
-- told of; a re-queued job's message can be lost like a submission's, and its submission time may be long
-- past, so the look reads this time. The state index orders by it (queries by state alone use it too).
ALTER TABLE job ADD COLUMN queued_at BIGINT;
UPDATE job SET queued_at = submitted_at WHERE state = 'QUEUED';
DROP INDEX job_state;
CREATE INDEX job_state ON job (state, queued_at);
