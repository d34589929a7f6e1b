package io.anneal.billing.ledger;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.anneal.billing.sql.Database;
import org.junit.jupiter.api.BeforeAll;

/** The ledger contract on the local PostgreSQL server (CI starts it; see .ci/run). */
class PostgresLedgerTest extends LedgerContract {
  @BeforeAll
  static void requirePostgres() {
    boolean up = TestDatabases.localPostgresReachable();
    if (TestDatabases.requiredByCi() && !up) {
      throw new IllegalStateException("CI=true but PostgreSQL is not reachable at " + TestDatabases.localPostgresUrl());
    }
    assumeTrue(up, "local PostgreSQL not reachable; the Testcontainers variant covers machines with Docker");
  }

  @Override
  protected Database open() {
    return TestDatabases.freshPostgres(TestDatabases.localPostgresUrl());
  }
}
