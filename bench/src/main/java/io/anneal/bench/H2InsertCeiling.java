package io.anneal.bench;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.UUID;

/**
 * The ceiling under settlement on H2: plain inserts of settlement-shaped rows (~1.2 KB: receipt body
 * and proof) in transactions of 2,000, with or without the settlement table's three secondary
 * indexes, and nothing else (no reads, no escrow update, no journal).
 *
 * <p>{@code java -cp bench/target/benchmarks.jar io.anneal.bench.H2InsertCeiling JDBC_URL ROWS INDEXES}
 */
public final class H2InsertCeiling {
  private static final int BATCH = 2_000;

  private H2InsertCeiling() {}

  public static void main(String[] args) throws SQLException {
    if (args.length != 3) {
      System.err.println("usage: H2InsertCeiling JDBC_URL ROWS INDEXES(true|false)");
      System.exit(2);
    }
    String url = args[0];
    int total = Integer.parseInt(args[1]);
    boolean indexes = Boolean.parseBoolean(args[2]);
    try (Connection c = DriverManager.getConnection(url, "sa", "")) {
      try (Statement st = c.createStatement()) {
        st.execute("DROP TABLE IF EXISTS s");
        st.execute("CREATE TABLE s (receipt_id VARCHAR(100) PRIMARY KEY, job_id VARCHAR(64) NOT NULL, node_id VARCHAR(64),"
            + " tx_id BIGINT, epoch BIGINT, charge BIGINT, body VARCHAR(4000), proof VARCHAR(8000))");
        if (indexes) {
          st.execute("CREATE INDEX s_job ON s (job_id)");
          st.execute("CREATE INDEX s_epoch ON s (epoch, receipt_id)");
          st.execute("CREATE INDEX s_node ON s (node_id, tx_id)");
        }
      }
      c.setAutoCommit(false);
      String body = "x".repeat(600);
      String proof = "p".repeat(500);
      long start = System.nanoTime();
      int written = 0;
      for (int batch = 0; written < total; batch++) {
        String[] ids = new String[BATCH];
        String[] jobs = new String[BATCH];
        for (int i = 0; i < BATCH; i++) {
          ids[i] = "r" + String.format("%012d", written + i) + UUID.randomUUID();
          jobs[i] = "j" + (written + i);
        }
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO s SELECT v.id, v.job, 'node-1', " + batch
            + ", 1, 5, ?, ? FROM unnest(CAST(? AS VARCHAR ARRAY), CAST(? AS VARCHAR ARRAY)) AS v(id, job)")) {
          ps.setString(1, body);
          ps.setString(2, proof);
          ps.setArray(3, c.createArrayOf("varchar", ids));
          ps.setArray(4, c.createArrayOf("varchar", jobs));
          ps.executeUpdate();
        }
        c.commit();
        written += BATCH;
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      System.out.printf("%s, indexes=%s: %d rows in %.2f s -> %.0f rows/s%n", url.contains(":mem:") ? "in memory" : "file",
          indexes, written, seconds, written / seconds);
    }
  }
}
