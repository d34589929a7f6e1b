-- Append-only double-entry ledger. Every transaction's postings sum to zero per denom.
-- Balances are a materialized view of the postings, updated in the same transaction.

CREATE TABLE ledger_tx (
  id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind       VARCHAR(32)  NOT NULL,
  ref        VARCHAR(200) NOT NULL,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
  CONSTRAINT ledger_tx_ref_unique UNIQUE (ref)
);

CREATE TABLE posting (
  id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tx_id   BIGINT       NOT NULL REFERENCES ledger_tx (id),
  account VARCHAR(120) NOT NULL,
  denom   VARCHAR(8)   NOT NULL,
  amount  BIGINT       NOT NULL
);
CREATE INDEX posting_tx ON posting (tx_id);
CREATE INDEX posting_account ON posting (account, denom);

CREATE TABLE balance (
  account VARCHAR(120) NOT NULL,
  denom   VARCHAR(8)   NOT NULL,
  amount  BIGINT       NOT NULL,
  PRIMARY KEY (account, denom)
);

-- ACT held for a job between admission and settlement.
CREATE TABLE escrow (
  job_id          VARCHAR(64)  PRIMARY KEY,
  tenant_id       VARCHAR(64)  NOT NULL,
  amount_uact     BIGINT       NOT NULL,
  price_uact_gpu_hour BIGINT   NOT NULL,
  gpu_class       VARCHAR(32)  NOT NULL,
  gpus            INT          NOT NULL,
  state           VARCHAR(16)  NOT NULL,
  created_at      TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL
);

-- Node signing keys that billing trusts.
CREATE TABLE node_key (
  node_id    VARCHAR(64) PRIMARY KEY,
  public_key VARCHAR(200) NOT NULL,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL
);

-- One row per settled receipt; receipt_id is unique, so a second delivery is a no-op.
CREATE TABLE settlement (
  receipt_id   VARCHAR(100) PRIMARY KEY,
  job_id       VARCHAR(64)  NOT NULL,
  tenant_id    VARCHAR(64)  NOT NULL,
  node_id      VARCHAR(64)  NOT NULL,
  tx_id        BIGINT       NOT NULL REFERENCES ledger_tx (id),
  charge_uact  BIGINT       NOT NULL,
  refund_uact  BIGINT       NOT NULL,
  receipt_body VARCHAR(4000) NOT NULL,
  batch_root   VARCHAR(64)  NOT NULL,
  proof        VARCHAR(8000) NOT NULL,
  signature    VARCHAR(200) NOT NULL,
  settled_at   TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL
);
CREATE INDEX settlement_job ON settlement (job_id);

-- BME supply counters that are not account balances (bme-spec section 4).
CREATE TABLE bme_state (
  id                  INT PRIMARY KEY,
  remint_credits      BIGINT NOT NULL,
  total_minted_uact   BIGINT NOT NULL,
  total_minted_uakt   BIGINT NOT NULL,
  total_burned_uact   BIGINT NOT NULL,
  status              VARCHAR(16) NOT NULL,
  previous_status     VARCHAR(16) NOT NULL,
  epoch_height_diff   BIGINT NOT NULL
);
INSERT INTO bme_state VALUES (1, 0, 0, 0, 0, 'HALT_CR', 'UNSPECIFIED', 10);

-- Refused receipts (bad signature, unknown node): kept for audit, never settled.
CREATE TABLE refused_receipt (
  id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  receipt_id VARCHAR(100) NOT NULL,
  node_id    VARCHAR(64)  NOT NULL,
  reason     VARCHAR(200) NOT NULL,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL
);
