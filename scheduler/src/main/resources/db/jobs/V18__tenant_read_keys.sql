-- Read-only API keys of a tenant (ADR 30): they read what the tenant's key reads (jobs, receipts,
-- balance, statement, webhooks' deliveries) and change nothing. Stored as SHA-256 hashes; an expiry
-- and a revocation end them; kept after either, for the record.
CREATE TABLE tenant_read_key (
  key_hash    VARCHAR(64)  PRIMARY KEY,
  tenant_id   VARCHAR(64)  NOT NULL,
  name        VARCHAR(100) NOT NULL,
  created_at  BIGINT       NOT NULL,
  expires_at  BIGINT,
  revoked_at  BIGINT
);
CREATE INDEX tenant_read_key_tenant ON tenant_read_key (tenant_id);
