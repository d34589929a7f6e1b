-- Which ACT an executed payout burned, by amount (ADR 8 addendum 2, PayoutFifo): its node's income
-- (receipt charges and bootstrap top-ups, in journal order) is burned first in, first out. A payout
-- keeps where it started (first item: journal entry, receipt id or '' for a top-up, uact of it burned
-- before) and where it ended (last item, uact of it burned with it), how much income it burned, and
-- how many receipts and how much of their charges. NULL on payouts executed before V19 (attributed by
-- their range of entries) and on pending or cancelled ones.
ALTER TABLE bme_request ADD COLUMN fifo_start_tx BIGINT;
ALTER TABLE bme_request ADD COLUMN fifo_start_item VARCHAR(100);
ALTER TABLE bme_request ADD COLUMN fifo_start_used BIGINT;
ALTER TABLE bme_request ADD COLUMN fifo_end_tx BIGINT;
ALTER TABLE bme_request ADD COLUMN fifo_end_item VARCHAR(100);
ALTER TABLE bme_request ADD COLUMN fifo_end_used BIGINT;
ALTER TABLE bme_request ADD COLUMN fifo_income_uact BIGINT;
ALTER TABLE bme_request ADD COLUMN fifo_receipts BIGINT;
ALTER TABLE bme_request ADD COLUMN fifo_receipts_uact BIGINT;
-- A provider's credits since a journal entry, for the walk above: the account's postings by entry.
DROP INDEX posting_account;
CREATE INDEX posting_account ON posting (account, denom, tx_id);
