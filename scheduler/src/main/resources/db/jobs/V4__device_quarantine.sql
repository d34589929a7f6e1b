-- Devices taken out of service after repeated device failures; kept across restarts until an
-- operator lifts the quarantine (DELETE /api/v1/gpus/{nodeId}/{device}/quarantine).
CREATE TABLE device_quarantine (
  node_id  VARCHAR(64)  NOT NULL,
  device   INT          NOT NULL,
  reason   VARCHAR(1000) NOT NULL,
  since    BIGINT       NOT NULL,
  PRIMARY KEY (node_id, device)
);
