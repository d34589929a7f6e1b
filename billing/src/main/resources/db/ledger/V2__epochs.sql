-- Accounting epochs: each settlement belongs to the epoch of its settlement time; a closed epoch has
-- totals, the burned-vs-minted ratio and a Merkle root over its settlements' receipt leaves.
ALTER TABLE settlement ADD COLUMN epoch BIGINT;
ALTER TABLE settlement ADD COLUMN leaf_hash VARCHAR(64);
CREATE INDEX settlement_epoch ON settlement (epoch, receipt_id);

CREATE TABLE epoch_close (
  epoch             BIGINT PRIMARY KEY,
  epoch_seconds     BIGINT NOT NULL,
  starts_at_ms      BIGINT NOT NULL,
  ends_at_ms        BIGINT NOT NULL,
  receipts          BIGINT NOT NULL,
  charged_uact      BIGINT NOT NULL,
  act_minted_uact   BIGINT NOT NULL,
  akt_in_uakt       BIGINT NOT NULL,
  akt_out_uakt      BIGINT NOT NULL,
  burn_mint_ratio   VARCHAR(64),
  merkle_root       VARCHAR(64) NOT NULL,
  closed_at_ms      BIGINT NOT NULL
);
