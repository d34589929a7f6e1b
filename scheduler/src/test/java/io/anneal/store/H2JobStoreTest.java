package io.anneal.store;

import io.anneal.billing.ledger.TestDatabases;
import io.anneal.billing.sql.Database;

class H2JobStoreTest extends JobStoreContract {
  @Override
  protected Database open() {
    return TestDatabases.freshH2();
  }
}
