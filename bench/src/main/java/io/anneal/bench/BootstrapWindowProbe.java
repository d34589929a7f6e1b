package io.anneal.bench;

import io.anneal.billing.bme.Dec;
import io.anneal.billing.ledger.BootstrapPayouts;
import io.anneal.billing.pricing.BootstrapFund;
import io.anneal.billing.sql.Database;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * What closing a bootstrap-fund window costs (bme-spec 16.3, ADR 21) in a ledger of N settlements: the
 * close sums the window's provider revenue from {@code settlement} while it holds the settlement barrier
 * exclusively, so settlements wait for it. The N settlements are written directly, settled over the 30
 * days before the last hour (one-hour epochs, as the service files them), plus 1,000 in the last ten
 * minutes; then windows of one second each, in that last hour, are closed one after another and timed.
 *
 * <p>{@code java -cp bench/target/benchmarks.jar io.anneal.bench.BootstrapWindowProbe h2|pg N WINDOWS}
 */
public final class BootstrapWindowProbe {
  private BootstrapWindowProbe() {}

  public static void main(String[] args) throws Exception {
    String target = args.length > 0 ? args[0] : "h2";
    int n = args.length > 1 ? Integer.parseInt(args[1]) : 1_000_000;
    int windows = args.length > 2 ? Integer.parseInt(args[2]) : 20;
    java.nio.file.Path h2Dir = target.equals("pg") ? null : Files.createTempDirectory("anneal-window"); // removed at the end
    Database db = target.equals("pg")
        ? Database.open(System.getenv().getOrDefault("ANNEAL_BENCH_PG_URL", "jdbc:postgresql://127.0.0.1:5432/test?user=postgres"),
            "bench_" + Long.toHexString(System.nanoTime()), 2)
        : Database.h2File(h2Dir, 2);
    db.migrate("db/ledger", "flyway_ledger_history");
    long now = System.currentTimeMillis();
    long hourMs = 3_600_000L;
    try (Connection c = db.connection()) {
      c.setAutoCommit(false);
      long t0 = System.nanoTime();
      write(c, "old", n, now - hourMs - 30L * 24 * hourMs, now - hourMs, hourMs);
      write(c, "new", 1_000, now - 600_000, now, hourMs);
      System.out.printf("%s: %d settlements written over 30 days, 1,000 in the last ten minutes, in %.1f s%n", target, n,
          (System.nanoTime() - t0) / 1e9);
      var fund = BootstrapFund.defaults();
      var nodes = List.of(new BootstrapPayouts.NodeWindow("small", 2, "H100", Dec.ONE),
          new BootstrapPayouts.NodeWindow("n", 8, "H100", Dec.ONE));
      double[] ms = new double[windows];
      long start = now - 600_000;
      for (int k = 0; k < windows; k++) {
        long s0 = System.nanoTime();
        BootstrapPayouts.closeWindow(c, fund, nodes, Map.of("H100", 3_600_000L), start + k * 1_000L, start + (k + 1) * 1_000L,
            Dec.ZERO, 3600);
        c.commit();
        ms[k] = (System.nanoTime() - s0) / 1e6;
      }
      double[] sorted = ms.clone();
      Arrays.sort(sorted);
      System.out.printf("%s: %d windows closed, each in ms: %s; median %.1f ms, max %.1f ms%n", target, windows,
          Arrays.toString(Arrays.stream(ms).map(v -> Math.round(v * 10) / 10.0).toArray()), sorted[windows / 2],
          sorted[windows - 1]);
      // what a start adds to check the ledger's epoch length (io.anneal.billing.ledger.EpochLength)
      long e0 = System.nanoTime();
      var wrong = io.anneal.billing.ledger.EpochLength.mismatch(c, 3600);
      c.commit();
      System.out.printf("%s: epoch length checked in %.1f ms (%s)%n", target, (System.nanoTime() - e0) / 1e6,
          wrong.orElse("matches"));
      try (PreparedStatement ps = c.prepareStatement("SELECT COUNT(*), COALESCE(SUM(paid_uact), 0) FROM bootstrap_window");
          ResultSet rs = ps.executeQuery()) {
        rs.next();
        System.out.printf("%s: %d windows recorded, %d uact paid%n", target, rs.getLong(1), rs.getLong(2));
      }
    }
    db.dropSchema();
    db.close();
    TempDirs.delete(h2Dir);
  }

  /** {@code n} settlements of node {@code n} (1 uact each), settled evenly between {@code fromMs} and {@code toMs}. */
  private static void write(Connection c, String prefix, int n, long fromMs, long toMs, long epochMs) throws Exception {
    long tx = EpochProofProbe.settleEntry(c, "probe-" + prefix);
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO settlement (receipt_id, job_id, tenant_id, node_id, tx_id,"
        + " charge_uact, refund_uact, receipt_body, batch_root, proof, epoch, leaf_hash, settled_at) SELECT u.r, u.j, 't', 'n', ?,"
        + " 1, 0, 'body', 'root', '', u.e, 'leaf', u.s FROM unnest(CAST(? AS VARCHAR ARRAY), CAST(? AS VARCHAR ARRAY),"
        + " CAST(? AS BIGINT ARRAY), CAST(? AS TIMESTAMP WITH TIME ZONE ARRAY)) AS u(r, j, e, s)")) {
      for (int from = 0; from < n; from += 5_000) {
        int m = Math.min(5_000, n - from);
        String[] r = new String[m];
        String[] j = new String[m];
        Long[] e = new Long[m];
        java.sql.Timestamp[] s = new java.sql.Timestamp[m];
        for (int i = 0; i < m; i++) {
          j[i] = String.format("%s%09d", prefix, from + i);
          r[i] = j[i] + "/1";
          long at = fromMs + (toMs - fromMs) * (from + i) / n;
          e[i] = at / epochMs;
          s[i] = new java.sql.Timestamp(at);
        }
        ps.setLong(1, tx);
        ps.setArray(2, c.createArrayOf("varchar", r));
        ps.setArray(3, c.createArrayOf("varchar", j));
        ps.setArray(4, c.createArrayOf("bigint", e));
        ps.setArray(5, c.createArrayOf("timestamptz", s));
        ps.executeUpdate();
        c.commit();
      }
    }
  }
}
