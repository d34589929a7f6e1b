package io.anneal.billing.ledger;

import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.BeforeAll;

/** The ledger port's contract on the local PostgreSQL, the reactive PostgreSQL client adapter with 3 lanes. */
class SqlClientPostgresLedgerStoreTest extends LedgerStoreContract {
  @BeforeAll
  static void requirePostgres() {
    TestDatabases.requirePostgres();
  }

  @Override
  protected Database openDatabase() {
    return TestDatabases.freshPostgres(TestDatabases.localPostgresUrl());
  }

  @Override
  protected LedgerStore openStore(Vertx vertx, Database db, GroupCommitWriter writer, SqlLedger.PriceLookup prices,
      long epochSeconds) {
    return SqlClientLedgerStore.postgres(vertx, db.jdbcUrl(), db.schema(), 3, 500, prices, System::currentTimeMillis, epochSeconds);
  }
}
