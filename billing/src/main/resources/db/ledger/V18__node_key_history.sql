-- Every signing key a node has had (key rotation, ADR 18). node_key keeps the one it signs with now;
-- a retired key no longer signs but its signatures stay valid; a revoked key's signatures are refused
-- from the moment it is revoked (settlements made before stay, and the audit checks they were).
CREATE TABLE node_key_history (
  node_id       VARCHAR(64)  NOT NULL,
  public_key    VARCHAR(200) NOT NULL,
  added_at_ms   BIGINT       NOT NULL,
  retired_at_ms BIGINT,
  revoked_at_ms BIGINT,
  PRIMARY KEY (node_id, public_key)
);
INSERT INTO node_key_history (node_id, public_key, added_at_ms)
  SELECT node_id, public_key, CAST(EXTRACT(EPOCH FROM created_at) * 1000 AS BIGINT) FROM node_key;
