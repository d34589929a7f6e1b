-- Cluster mode (ADR 19): the roles only one instance may play at a time (scheduler, billing, webhooks)
-- are held through a PostgreSQL session advisory lock. Each new holder bumps its role's epoch here, and
-- the holder's writes check it (the fencing epoch), so an instance that lost the lock without knowing it
-- yet writes nothing. Unused by a single instance.
CREATE TABLE role_lease (
  role VARCHAR(32) PRIMARY KEY,
  epoch BIGINT NOT NULL,
  holder VARCHAR(200) NOT NULL,
  acquired_at BIGINT NOT NULL
);
