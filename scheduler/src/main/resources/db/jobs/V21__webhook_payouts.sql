-- Payout webhooks of provider accounts (ADR 32): the last journal entry that decided a payout (executed or
-- cancelled) this webhook was told of; its payouts decided later are owed to it. A webhook's owner
-- (tenant_id) is a tenant or, for these, a provider account.
ALTER TABLE webhook ADD COLUMN payouts_after_tx BIGINT DEFAULT 0 NOT NULL;
