-- A signed receipt batch's signature is stored once per batch, not on each of its settlements (the
-- rows were ~1.3 KB and their width was a large part of PostgreSQL's settlement cost). Settlements
-- written before keep their own signature; readers take the row's, else the batch's.
CREATE TABLE receipt_batch (
  batch_root VARCHAR(64)  PRIMARY KEY,
  node_id    VARCHAR(64)  NOT NULL,
  signature  VARCHAR(200) NOT NULL
);
ALTER TABLE settlement ALTER COLUMN signature DROP NOT NULL;
