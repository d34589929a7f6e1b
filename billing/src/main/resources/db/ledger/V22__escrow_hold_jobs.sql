-- Which jobs an escrow.hold journal entry held: a hold is one entry for a batch of admitted jobs, often of
-- several tenants, so a tenant's statement lists its own jobs of a hold line from here (ADR 26 addendum).
-- Written with the hold, in its transaction; holds made before this version have no rows.
CREATE TABLE escrow_hold_job (
  tx_id  BIGINT      NOT NULL,
  job_id VARCHAR(64) NOT NULL,
  PRIMARY KEY (tx_id, job_id)
);
