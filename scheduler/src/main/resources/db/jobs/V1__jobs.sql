CREATE TABLE tenant (
  id           VARCHAR(64)  PRIMARY KEY,
  name         VARCHAR(100) NOT NULL,
  api_key_hash VARCHAR(64)  NOT NULL,
  created_at   BIGINT       NOT NULL,
  CONSTRAINT tenant_name_unique UNIQUE (name),
  CONSTRAINT tenant_key_unique UNIQUE (api_key_hash)
);

CREATE TABLE admin_key (
  key_hash   VARCHAR(64) PRIMARY KEY,
  created_at BIGINT      NOT NULL
);

CREATE TABLE job (
  id              VARCHAR(64)  PRIMARY KEY,
  tenant_id       VARCHAR(64)  NOT NULL,
  idempotency_key VARCHAR(200),
  kind            VARCHAR(16)  NOT NULL,
  spec            TEXT         NOT NULL,
  gpus            INT          NOT NULL,
  gpu_class       VARCHAR(32),
  priority        INT          NOT NULL,
  max_seconds     BIGINT       NOT NULL,
  state           VARCHAR(16)  NOT NULL,
  outcome         VARCHAR(16),
  error           VARCHAR(2000),
  node_id         VARCHAR(64),
  placed_class    VARCHAR(32),
  devices         VARCHAR(2000),
  attempt         INT          NOT NULL,
  result          TEXT,
  escrow_uact     BIGINT       NOT NULL,
  price_uact_gpu_hour BIGINT   NOT NULL,
  charge_uact     BIGINT,
  receipt_id      VARCHAR(100),
  submitted_at    BIGINT       NOT NULL,
  started_at      BIGINT,
  ended_at        BIGINT,
  settled_at      BIGINT,
  CONSTRAINT job_idempotency_unique UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX job_state ON job (state);
CREATE INDEX job_tenant ON job (tenant_id, submitted_at);

-- Signed receipts waiting for billing's acknowledgement (transactional outbox).
CREATE TABLE outbox (
  receipt_id VARCHAR(100) PRIMARY KEY,
  job_id     VARCHAR(64)  NOT NULL,
  body       TEXT         NOT NULL,
  created_at BIGINT       NOT NULL
);
