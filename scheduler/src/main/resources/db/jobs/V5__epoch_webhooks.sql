-- Webhooks may ask for "epoch.closed": each accounting epoch's totals and Merkle root as it closes, so
-- that a tenant keeps its own copy of the roots (and can check later answers against it). A webhook's
-- cursor is the end of the last closed epoch it was given (deliveries are written with the cursor's
-- move, in one transaction: none lost, none twice); a new webhook starts at the epochs closed after it.
ALTER TABLE webhook ADD COLUMN epochs_after_ms BIGINT DEFAULT 0 NOT NULL;
