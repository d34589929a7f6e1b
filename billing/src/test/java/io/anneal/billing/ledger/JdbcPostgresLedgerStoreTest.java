package io.anneal.billing.ledger;

import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.BeforeAll;

/** The ledger port's contract on the local PostgreSQL, the JDBC adapter with 3 settlement lanes. */
class JdbcPostgresLedgerStoreTest extends LedgerStoreContract {
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
    return new io.anneal.billing.JdbcLedgerStore(writer, io.anneal.billing.SettlementLanes.own(db, 3, 500), prices, System::currentTimeMillis, epochSeconds);
  }
}
