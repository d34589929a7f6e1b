-- Webhooks (CONTRACT.md): a tenant registers a URL and the job events it wants; every matching
-- event becomes a delivery row, sent with an HMAC-SHA256 signature and retried with backoff until
-- the receiver answers 2xx or the attempts run out. Deliveries are kept as the delivery log.
CREATE TABLE webhook (
  id         VARCHAR(40)   PRIMARY KEY,
  tenant_id  VARCHAR(64)   NOT NULL,
  url        VARCHAR(2000) NOT NULL,
  events     VARCHAR(1000) NOT NULL,
  secret     VARCHAR(100)  NOT NULL,
  active     BOOLEAN       DEFAULT TRUE NOT NULL,
  created_at BIGINT        NOT NULL
);
CREATE INDEX webhook_tenant ON webhook (tenant_id);

CREATE TABLE webhook_delivery (
  id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  webhook_id      VARCHAR(40)    NOT NULL,
  event_id        VARCHAR(40)    NOT NULL,
  event_type      VARCHAR(40)    NOT NULL,
  body            VARCHAR(20000) NOT NULL,
  state           VARCHAR(16)    NOT NULL,
  attempts        INT            NOT NULL,
  next_attempt_at BIGINT         NOT NULL,
  last_status     INT,
  last_error      VARCHAR(500),
  created_at      BIGINT         NOT NULL,
  delivered_at    BIGINT
);
CREATE INDEX webhook_delivery_due ON webhook_delivery (state, next_attempt_at);
CREATE INDEX webhook_delivery_hook ON webhook_delivery (webhook_id, id);
