package io.anneal.billing.ledger;

import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import io.vertx.core.Vertx;

/** The ledger port's contract on H2, the Vert.x JDBC client adapter. */
class SqlClientH2LedgerStoreTest extends LedgerStoreContract {
  @Override
  protected Database openDatabase() {
    return TestDatabases.freshH2();
  }

  @Override
  protected LedgerStore openStore(Vertx vertx, Database db, GroupCommitWriter writer, SqlLedger.PriceLookup prices,
      long epochSeconds) {
    return SqlClientLedgerStore.h2(vertx, db.jdbcUrl(), 500, prices, System::currentTimeMillis, epochSeconds);
  }
}
