-- When a job was first placed (milliseconds since the epoch), written by the scheduler with its
-- placement: a node cannot have used more GPU time on the job than the job's GPUs times the time
-- since then, so settlement bills at most that (a receipt claiming more is capped, and says so), and
-- prices the run no earlier than then. Escrows held before V10 (nodes NULL) and those of jobs already
-- placed before this version get 0: their runs began before anything was recorded, so their
-- receipts are billed as claimed. A later placement (after preemption) keeps the first time.
ALTER TABLE escrow ADD COLUMN placed_at_ms BIGINT;
UPDATE escrow SET placed_at_ms = 0 WHERE state = 'OPEN' AND (nodes IS NULL OR nodes <> '');
-- The GPU time billed when it is less than the receipt claimed; NULL: billed as claimed.
ALTER TABLE settlement ADD COLUMN billed_gpu_nanos BIGINT;
