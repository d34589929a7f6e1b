package io.anneal.billing.ledger;

import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import io.vertx.core.Vertx;

/** The ledger port's contract on H2, the JDBC adapter on the store's writer. */
class JdbcH2LedgerStoreTest extends LedgerStoreContract {
  @Override
  protected Database openDatabase() {
    return TestDatabases.freshH2();
  }

  @Override
  protected LedgerStore openStore(Vertx vertx, Database db, GroupCommitWriter writer, SqlLedger.PriceLookup prices,
      long epochSeconds) {
    return new io.anneal.billing.JdbcLedgerStore(writer, io.anneal.billing.SettlementLanes.shared(writer), prices, System::currentTimeMillis, epochSeconds);
  }
}
