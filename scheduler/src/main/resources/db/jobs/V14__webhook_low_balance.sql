-- balance.low webhooks (ADR 28): the ACT a tenant's available balance is watched against, and whether the
-- webhook was told it fell below (told again only after the balance came back to the threshold or above).
ALTER TABLE webhook ADD COLUMN low_balance_uact BIGINT;
ALTER TABLE webhook ADD COLUMN low_balance_told BOOLEAN DEFAULT FALSE NOT NULL;
