package io.anneal.store;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.anneal.billing.ledger.TestDatabases;
import io.anneal.billing.sql.Database;
import org.junit.jupiter.api.BeforeAll;

/** The job store contract on the local PostgreSQL server (required under CI=true). */
class PostgresJobStoreTest extends JobStoreContract {
  @BeforeAll
  static void requirePostgres() {
    boolean up = TestDatabases.localPostgresReachable();
    if (TestDatabases.requiredByCi() && !up) {
      throw new IllegalStateException("CI=true but PostgreSQL is not reachable at " + TestDatabases.localPostgresUrl());
    }
    assumeTrue(up, "local PostgreSQL not reachable");
  }

  @Override
  protected Database open() {
    return TestDatabases.freshPostgres(TestDatabases.localPostgresUrl());
  }
}
