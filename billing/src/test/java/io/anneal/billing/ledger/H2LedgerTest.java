package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.sql.Database;
import java.sql.Connection;
import org.junit.jupiter.api.Test;

class H2LedgerTest extends LedgerContract {
  @Override
  protected Database open() {
    return TestDatabases.freshH2();
  }

  /** V21 adds its index on PostgreSQL only: H2's foreign-key index already leads with tx_id, and a second would cost each settlement. */
  @Test
  void settlementsAreFoundByTheirJournalEntryThroughOneIndex() throws Exception {
    try (Connection c = db.connection(); var st = c.createStatement(); var rs = st.executeQuery(
        "SELECT COUNT(*) FROM INFORMATION_SCHEMA.INDEX_COLUMNS WHERE UPPER(TABLE_NAME) = 'SETTLEMENT' AND UPPER(COLUMN_NAME) = 'TX_ID'"
            + " AND ORDINAL_POSITION = 1")) {
      rs.next();
      assertThat(rs.getInt(1)).isEqualTo(1);
    }
  }
}
