package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.sql.Database;
import java.sql.Connection;
import java.sql.Statement;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * V15 counts, for each escrow open when it runs, the partial receipts it already paid: settlement
 * looks up earlier settlements only for receipts of escrows that count some (SettlementPlan.mayHaveSettled),
 * so a ledger upgraded with a preempted job in flight must still answer that job's redelivered runs as duplicates.
 */
class EscrowPartialRunsMigrationTest {

  @Test
  void onH2() throws Exception {
    try (Database db = Database.h2Memory("v15-" + UUID.randomUUID(), 2)) {
      assertBackfilled(db);
    }
  }

  @Test
  void onPostgres() throws Exception {
    TestDatabases.requirePostgres();
    String schema = "t_" + UUID.randomUUID().toString().replace("-", "").substring(0, 16);
    try (Database db = Database.open(TestDatabases.localPostgresUrl(), schema, 2)) {
      try {
        assertBackfilled(db);
      } finally {
        db.dropSchema();
      }
    }
  }

  private static void assertBackfilled(Database db) throws Exception {
    migrate(db, "14");
    try (Connection c = db.connection(); Statement st = c.createStatement()) {
      st.executeUpdate("INSERT INTO ledger_tx (kind, ref) VALUES ('settle', 'settle:x')");
      long tx;
      try (var rs = st.executeQuery("SELECT MAX(id) FROM ledger_tx")) {
        rs.next();
        tx = rs.getLong(1);
      }
      // p: preempted twice, still open; q: open, never settled; s: settled (closed)
      for (String[] e : new String[][] {{"p", "OPEN"}, {"q", "OPEN"}, {"s", "SETTLED"}}) {
        st.executeUpdate("INSERT INTO escrow (job_id, tenant_id, amount_uact, price_uact_gpu_hour, gpu_class, gpus, state)"
            + " VALUES ('" + e[0] + "', 't1', 1000, 3600000, 'H100', 1, '" + e[1] + "')");
      }
      for (String id : new String[] {"p/0", "p/1", "s/0"}) {
        st.executeUpdate("INSERT INTO settlement (receipt_id, job_id, tenant_id, node_id, tx_id, charge_uact, refund_uact,"
            + " receipt_body, batch_root, proof, epoch, leaf_hash) VALUES ('" + id + "', '" + id.substring(0, 1) + "', 't1',"
            + " 'n1', " + tx + ", 1, 0, 'body', 'root', 'b64:', 0, 'leaf')");
      }
    }
    migrate(db, null);
    Map<String, Integer> runs = new HashMap<>();
    try (Connection c = db.connection(); Statement st = c.createStatement();
        var rs = st.executeQuery("SELECT job_id, partial_runs FROM escrow")) {
      while (rs.next()) runs.put(rs.getString(1), rs.getInt(2));
    }
    // a closed escrow is never read by settlement: its receipts are always looked up
    assertThat(runs).containsEntry("p", 2).containsEntry("q", 0).containsEntry("s", 0);
  }

  /** As the service migrates (Database's Flyway settings: schema, placeholders), up to {@code target} if given. */
  private static void migrate(Database db, String target) {
    if (target == null) {
      db.migrate("db/ledger", "flyway_ledger_history");
    } else {
      db.migrate("db/ledger", "flyway_ledger_history", target);
    }
  }
}
