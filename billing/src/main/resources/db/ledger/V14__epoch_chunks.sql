-- An epoch's Merkle leaves in chunks of 1,024 (EpochChunks), written when it closes: a receipt's
-- inclusion proof then reads its chunk and the chunks' roots, not every settlement of the epoch.
-- Epochs closed before this version have no chunks; their proofs read the settlements as before.
CREATE TABLE epoch_chunk (
  epoch            BIGINT        NOT NULL,
  chunk            INT           NOT NULL,
  first_receipt_id VARCHAR(100)  NOT NULL,
  leaves           VARCHAR(65536) NOT NULL,
  root             VARCHAR(64)   NOT NULL,
  PRIMARY KEY (epoch, chunk)
);
CREATE INDEX epoch_chunk_first ON epoch_chunk (epoch, first_receipt_id);
