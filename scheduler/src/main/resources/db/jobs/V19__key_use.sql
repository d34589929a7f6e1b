-- When each API key last authenticated a request (a tenant's key, its previous key in a rotation's grace,
-- a read-only key, an admin key), by the key's hash: what an operator looks at before revoking a key or
-- ending a rotation's grace. Each instance writes what it saw every 30 s and when it stops; the latest
-- time wins.
CREATE TABLE key_use (
  key_hash     VARCHAR(64) PRIMARY KEY,
  last_used_at BIGINT      NOT NULL
);
