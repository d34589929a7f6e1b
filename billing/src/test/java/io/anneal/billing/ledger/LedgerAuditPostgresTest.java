package io.anneal.billing.ledger;

import io.anneal.billing.sql.Database;
import org.junit.jupiter.api.BeforeAll;

/** The ledger audit on the local PostgreSQL. */
class LedgerAuditPostgresTest extends LedgerAuditContract {
  @BeforeAll
  static void requirePostgres() {
    TestDatabases.requirePostgres();
  }

  @Override
  protected Database openDatabase() {
    return TestDatabases.freshPostgres(TestDatabases.localPostgresUrl());
  }
}
