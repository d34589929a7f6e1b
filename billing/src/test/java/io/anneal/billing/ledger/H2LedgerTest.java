package io.anneal.billing.ledger;

import io.anneal.billing.sql.Database;

class H2LedgerTest extends LedgerContract {
  @Override
  protected Database open() {
    return TestDatabases.freshH2();
  }
}
