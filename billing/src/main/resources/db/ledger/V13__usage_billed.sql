-- The GPU time already billed out of an escrow, by the partial receipts of a preempted job's earlier
-- runs: all runs of a job together cannot have used more than its GPUs times the time since its first
-- placement (V11), so a later run is billed at most what is left of that bound.
ALTER TABLE escrow ADD COLUMN used_gpu_nanos BIGINT DEFAULT 0 NOT NULL;
