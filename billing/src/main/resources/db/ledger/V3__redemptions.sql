-- Provider payouts: ACT -> AKT redemptions queued and executed at redemption epochs (bme-spec 8.1,
-- 9.1, 10.3). The ACT is held by the engine from the request until execution or cancellation.
CREATE TABLE bme_request (
  id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  ref                VARCHAR(200) NOT NULL,
  owner              VARCHAR(120) NOT NULL,
  direction          VARCHAR(16)  NOT NULL,
  amount             BIGINT       NOT NULL,
  state              VARCHAR(16)  NOT NULL,
  attempts           INT          NOT NULL,
  requested_at_ms    BIGINT       NOT NULL,
  covers_tx_after    BIGINT       NOT NULL,
  covers_tx_through  BIGINT       NOT NULL,
  decided_at_ms      BIGINT,
  swap_rate          VARCHAR(64),
  paid_uakt          BIGINT,
  remint_issued_uakt BIGINT,
  fresh_uakt         BIGINT,
  reason             VARCHAR(64),
  tx_id              BIGINT,
  CONSTRAINT bme_request_ref_unique UNIQUE (ref)
);
CREATE INDEX bme_request_queue ON bme_request (state, owner, id);
CREATE INDEX settlement_node_tx ON settlement (node_id, tx_id);
