-- deposit.executed / deposit.cancelled webhooks (ADR 28 addendum): the journal entry of the last deposit decision
-- told to each webhook; deposits decided after it are owed (a new webhook starts at the last one decided).
ALTER TABLE webhook ADD COLUMN deposits_after_tx BIGINT DEFAULT 0 NOT NULL;
