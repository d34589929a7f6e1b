-- How many partial receipts (a preempted job's earlier runs) an open escrow has paid. A receipt is
-- <jobId>/<attempt> and settles only out of its job's open escrow, which its final receipt closes: so a
-- receipt whose job's escrow is open and has paid no partial receipt was never settled, and settlement
-- looks up earlier settlements only for the other receipts (SettlementPlan.mayHaveSettled).
ALTER TABLE escrow ADD COLUMN partial_runs INT DEFAULT 0 NOT NULL;
UPDATE escrow SET partial_runs = (SELECT COUNT(*) FROM settlement s WHERE s.job_id = escrow.job_id) WHERE state = 'OPEN';
