-- The settlement barrier on H2 (ADR 12): settlements lock this row while they settle, and so do
-- the readers that need every settlement of an epoch committed (closing an epoch, a payout, a
-- bootstrap window), as the first statement of their own transaction. With settlement on the
-- Vert.x JDBC client, settlements and those readers run on different connections. On PostgreSQL
-- the barrier stays a transaction-scoped advisory lock, shared by settlements.
CREATE TABLE settlement_barrier (id INT PRIMARY KEY);
INSERT INTO settlement_barrier (id) VALUES (1);
