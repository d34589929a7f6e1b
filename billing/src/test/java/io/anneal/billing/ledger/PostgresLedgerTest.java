package io.anneal.billing.ledger;

import io.anneal.billing.sql.Database;
import org.junit.jupiter.api.BeforeAll;

/** The ledger contract on the local PostgreSQL server (CI starts it; see .ci/run). */
class PostgresLedgerTest extends LedgerContract {
  @BeforeAll
  static void requirePostgres() {
    TestDatabases.requirePostgres();
  }

  @Override
  protected Database open() {
    return TestDatabases.freshPostgres(TestDatabases.localPostgresUrl());
  }
}
