-- Epoch totals the issue asks for beyond V2's: ACT burned by redemptions, AKT newly minted by them
-- (bme-spec 16.1 "inflation") and the mint fees (the spread the engine kept).
ALTER TABLE epoch_close ADD COLUMN act_burned_uact BIGINT DEFAULT 0 NOT NULL;
ALTER TABLE epoch_close ADD COLUMN akt_fresh_uakt BIGINT DEFAULT 0 NOT NULL;
ALTER TABLE epoch_close ADD COLUMN fees_uact BIGINT DEFAULT 0 NOT NULL;
