-- A key rotation may keep the replaced key working for a while (POST /api/v1/tenants/{id}/keys with
-- graceSeconds, ADR 23 addendum), so that a tenant's running clients can move to the new key without
-- an outage. The replaced key's hash and when it stops authenticating (ms); NULL: no such key.
ALTER TABLE tenant ADD COLUMN previous_key_hash VARCHAR(64);
ALTER TABLE tenant ADD COLUMN previous_key_until BIGINT;
CREATE INDEX tenant_previous_key ON tenant (previous_key_hash);
