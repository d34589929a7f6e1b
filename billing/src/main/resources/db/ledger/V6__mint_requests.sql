-- Tenant top-ups queue as AKT -> ACT requests in bme_request and execute at mint epochs
-- (bme-spec 8.1, 9.1, 10.2). What an executed mint produced:
ALTER TABLE bme_request ADD COLUMN minted_uact BIGINT;
ALTER TABLE bme_request ADD COLUMN credited_uact BIGINT;
ALTER TABLE bme_request ADD COLUMN spread_uact BIGINT;
