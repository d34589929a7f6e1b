package io.anneal.billing.ledger;

import io.anneal.billing.sql.Database;
import org.testcontainers.junit.jupiter.Container;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.postgresql.PostgreSQLContainer;

/** The ledger contract on a throwaway PostgreSQL container; skipped cleanly where Docker is absent. */
@Testcontainers(disabledWithoutDocker = true)
class PostgresContainerLedgerTest extends LedgerContract {
  @Container static final PostgreSQLContainer PG = new PostgreSQLContainer("postgres:15-alpine");

  @Override
  protected Database open() {
    return TestDatabases.freshPostgres(PG.getJdbcUrl() + "&user=" + PG.getUsername() + "&password=" + PG.getPassword());
  }
}
