package io.anneal.billing.ledger;

import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import io.vertx.core.Vertx;
import org.testcontainers.junit.jupiter.Container;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.postgresql.PostgreSQLContainer;

/** The ledger port's contract on a throwaway PostgreSQL container, the reactive PostgreSQL client adapter with 3 lanes; skipped cleanly where Docker is absent. */
@Testcontainers(disabledWithoutDocker = true)
class SqlClientPostgresContainerLedgerStoreTest extends LedgerStoreContract {
  @Container static final PostgreSQLContainer PG = new PostgreSQLContainer("postgres:15-alpine");

  @Override
  protected Database openDatabase() {
    return TestDatabases.freshPostgres(PG.getJdbcUrl() + "&user=" + PG.getUsername() + "&password=" + PG.getPassword());
  }

  @Override
  protected LedgerStore openStore(Vertx vertx, Database db, GroupCommitWriter writer, SqlLedger.PriceLookup prices,
      long epochSeconds) {
    return SqlClientLedgerStore.postgres(vertx, db.jdbcUrl(), db.schema(), 3, 500, prices, System::currentTimeMillis, epochSeconds);
  }
}
