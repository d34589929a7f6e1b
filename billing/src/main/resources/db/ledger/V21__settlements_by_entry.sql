-- The settlements of one journal entry, for a tenant's statement (GET /api/v1/tenants/{id}/statement/{txId}).
-- H2 indexes settlement.tx_id already, for its foreign key to ledger_tx; PostgreSQL does not index a
-- foreign key's column, so only PostgreSQL gets this index (a second one would cost H2's settlement
-- writer a B-tree entry per receipt for nothing).
-- IF NOT EXISTS: on a large ledger an operator may build it beforehand with CREATE INDEX CONCURRENTLY.
${postgresOnly}CREATE INDEX IF NOT EXISTS settlement_tx ON settlement (tx_id);
