package io.anneal.billing.ledger;

import io.anneal.billing.sql.Database;

/** The ledger audit on H2. */
class LedgerAuditH2Test extends LedgerAuditContract {
  @Override
  protected Database openDatabase() {
    return TestDatabases.freshH2();
  }
}
