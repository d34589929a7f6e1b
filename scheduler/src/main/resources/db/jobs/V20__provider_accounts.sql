-- Provider accounts (ADR 32): the operator of some nodes, with an API key of its own that reads what
-- its nodes earned (their statements and payouts) and asks for their payouts, and nothing else.
-- Stored as a SHA-256 hash, like every key; a node belongs to at most one account.
CREATE TABLE provider_account (
  id         VARCHAR(64)  PRIMARY KEY,
  name       VARCHAR(100) NOT NULL,
  key_hash   VARCHAR(64)  NOT NULL,
  created_at BIGINT       NOT NULL,
  CONSTRAINT provider_account_name_unique UNIQUE (name),
  CONSTRAINT provider_account_key_unique UNIQUE (key_hash)
);
CREATE TABLE provider_node (
  node_id    VARCHAR(64) PRIMARY KEY,
  account_id VARCHAR(64) NOT NULL REFERENCES provider_account (id)
);
CREATE INDEX provider_node_account ON provider_node (account_id);
