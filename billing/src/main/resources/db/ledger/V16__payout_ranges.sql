-- A settled receipt names the provider payout that redeemed its ACT (Redemptions.payoutOf): payouts
-- looked up by their node and the range of settlement journal entries they cover.
CREATE INDEX bme_request_owner_range ON bme_request (owner, covers_tx_through);
