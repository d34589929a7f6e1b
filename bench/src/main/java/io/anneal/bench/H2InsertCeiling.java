package io.anneal.bench;

import java.sql.*;
/**
 * The ceiling under settlement on H2: plain inserts of settlement-shaped rows (~1.2 KB: receipt body
 * and proof) in transactions of 2,000, with or without the settlement table's three secondary
 * indexes, and nothing else (no reads, no escrow update, no journal).
 *
 * <p>{@code java -cp bench/target/benchmarks.jar io.anneal.bench.H2InsertCeiling JDBC_URL ROWS INDEXES}
 */
public final class H2InsertCeiling {
  private H2InsertCeiling() {}


  public static void main(String[] a) throws Exception {
    if (a.length != 3) {
      System.err.println("usage: H2InsertCeiling JDBC_URL ROWS INDEXES(true|false)");
      System.exit(2);
    }
    String url = a[0]; int total = Integer.parseInt(a[1]); boolean idx = Boolean.parseBoolean(a[2]);
    try (Connection c = DriverManager.getConnection(url, "sa", "")) {
      c.createStatement().execute("DROP TABLE IF EXISTS s");
      c.createStatement().execute("CREATE TABLE s (receipt_id VARCHAR(100) PRIMARY KEY, job_id VARCHAR(64) NOT NULL, node_id VARCHAR(64), tx_id BIGINT, epoch BIGINT, charge BIGINT, body VARCHAR(4000), proof VARCHAR(8000))");
      if (idx) {
        c.createStatement().execute("CREATE INDEX s_job ON s (job_id)");
        c.createStatement().execute("CREATE INDEX s_epoch ON s (epoch, receipt_id)");
        c.createStatement().execute("CREATE INDEX s_node ON s (node_id, tx_id)");
      }
      c.setAutoCommit(false);
      String body = "x".repeat(600), proof = "p".repeat(500);
      long t0 = System.nanoTime();
      int n = 0;
      for (int b = 0; n < total; b++) {
        int m = 2000;
        String[] ids = new String[m], jobs = new String[m];
        for (int i = 0; i < m; i++) { ids[i] = "r" + String.format("%012d", n + i) + java.util.UUID.randomUUID(); jobs[i] = "j" + (n + i); }
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO s SELECT v.id, v.job, 'node-1', " + b + ", 1, 5, ?, ? FROM unnest(CAST(? AS VARCHAR ARRAY), CAST(? AS VARCHAR ARRAY)) AS v(id, job)")) {
          ps.setString(1, body); ps.setString(2, proof);
          ps.setArray(3, c.createArrayOf("varchar", ids)); ps.setArray(4, c.createArrayOf("varchar", jobs));
          ps.executeUpdate();
        }
        c.commit();
        n += m;
      }
      double s = (System.nanoTime() - t0) / 1e9;
      System.out.printf("%s idx=%s: %d rows in %.2f s -> %.0f rows/s%n", url.contains("mem:") ? "mem" : "file", idx, n, s, n / s);
    }
  }
}
