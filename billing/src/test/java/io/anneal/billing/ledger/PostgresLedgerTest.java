package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.sql.Database;
import java.sql.Connection;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

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

  /** PostgreSQL does not index a foreign key's column: V21 indexes settlement.tx_id for the statement's entries. */
  @Test
  void settlementsAreFoundByTheirJournalEntryThroughAnIndex() throws Exception {
    try (Connection c = db.connection(); var st = c.createStatement(); var rs = st.executeQuery(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'settlement_tx'")) {
      assertThat(rs.next()).isTrue();
      assertThat(rs.getString(1)).contains("(tx_id)");
    }
  }
}
