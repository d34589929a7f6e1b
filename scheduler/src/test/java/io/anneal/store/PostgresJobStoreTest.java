package io.anneal.store;

import io.anneal.billing.ledger.TestDatabases;
import io.anneal.billing.sql.Database;
import org.junit.jupiter.api.BeforeAll;

/** The job store contract on the local PostgreSQL server (required under CI=true). */
class PostgresJobStoreTest extends JobStoreContract {
  @BeforeAll
  static void requirePostgres() {
    TestDatabases.requirePostgres();
  }

  @Override
  protected Database open() {
    return TestDatabases.freshPostgres(TestDatabases.localPostgresUrl());
  }
}
