package io.anneal.bench;

import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.merkle.MerkleTree;
import io.anneal.billing.sql.Database;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import java.util.Random;

/**
 * How long a receipt's epoch inclusion proof takes to make (what {@code GET /api/v1/receipts/{jobId}}
 * adds once the job's epoch has closed), in an epoch of N settlements: from the epoch's chunks (V14,
 * the service's path) against from every leaf of the epoch (the path before V14, kept for epochs
 * closed without chunks). The settlements are written directly (rows shaped as the service writes
 * them, with real leaf hashes; receipt bodies short), the epoch is closed by {@code
 * SqlLedger.closeEpochs}, then proofs of random receipts are made on one connection, after a warm-up,
 * and every proof is checked against the epoch's root.
 *
 * <p>{@code java -cp bench/target/benchmarks.jar io.anneal.bench.EpochProofProbe h2|pg N PROOFS}
 */
public final class EpochProofProbe {
  private EpochProofProbe() {}

  public static void main(String[] args) throws Exception {
    String target = args.length > 0 ? args[0] : "h2";
    int n = args.length > 1 ? Integer.parseInt(args[1]) : 300_000;
    int proofs = args.length > 2 ? Integer.parseInt(args[2]) : 200;
    java.nio.file.Path h2Dir = target.equals("pg") ? null : Files.createTempDirectory("anneal-proof"); // removed at the end
    Database db = target.equals("pg")
        ? Database.open(System.getenv().getOrDefault("ANNEAL_BENCH_PG_URL", "jdbc:postgresql://127.0.0.1:5432/test?user=postgres"),
            "bench_" + Long.toHexString(System.nanoTime()), 2)
        : Database.h2File(h2Dir, 2);
    db.migrate("db/ledger", "flyway_ledger_history");
    long epoch = 1; // with one-hour epochs: 1970-01-01T01:00Z, long closed
    String[] ids;
    try (Connection c = db.connection()) {
      c.setAutoCommit(false);
      long t0 = System.nanoTime();
      ids = writeSettlements(c, "j", n, epoch);
      long t1 = System.nanoTime();
      var closed = SqlLedger.closeEpochs(c, System.currentTimeMillis(), 3600);
      c.commit();
      long t2 = System.nanoTime();
      if (closed.size() != 1 || closed.get(0).receipts() != n) throw new IllegalStateException("closed " + closed);
      byte[] root = HexFormat.of().parseHex(closed.get(0).merkleRoot());
      System.out.printf("%s: %d settlements written in %.1f s; epoch closed (root and chunks) in %.2f s%n", target, n,
          (t1 - t0) / 1e9, (t2 - t1) / 1e9);
      // what the billing verticle's periodic close (every 10 s with one-hour epochs) costs when there is nothing to close
      double[] idle = new double[5];
      for (int k = 0; k < idle.length; k++) {
        long s0 = System.nanoTime();
        if (!SqlLedger.closeEpochs(c, System.currentTimeMillis(), 3600).isEmpty()) throw new IllegalStateException("closed twice");
        c.commit();
        idle[k] = (System.nanoTime() - s0) / 1e6;
      }
      Arrays.sort(idle);
      System.out.printf("  periodic close with nothing to close: median %.1f ms, max %.1f ms%n", idle[2], idle[4]);
      Random rnd = new Random(7);
      for (String mode : new String[] {"chunks", "all leaves", "chunks", "all leaves"}) {
        int warm = mode.equals("chunks") ? 50 : 3;
        int count = mode.equals("chunks") ? proofs : Math.max(5, proofs / 20);
        double[] ms = new double[count];
        for (int k = -warm; k < count; k++) {
          String id = ids[rnd.nextInt(n)];
          long s = System.nanoTime();
          Map<String, Object> p = mode.equals("chunks")
              ? SqlLedger.epochProof(c, id).orElseThrow()
              : allLeaves(c, epoch, id);
          long e = System.nanoTime();
          c.commit();
          byte[] leaf = MerkleTree.leafHash(("anneal-receipt/1\n" + id).getBytes(StandardCharsets.UTF_8));
          if (!MerkleTree.verify(leaf, SqlLedger.decodeProof((String) p.get("proof")), root)) {
            throw new IllegalStateException("proof of " + id + " does not verify");
          }
          if (k >= 0) ms[k] = (e - s) / 1e6;
        }
        Arrays.sort(ms);
        System.out.printf("  proof from %-10s: %d proofs, median %.2f ms, p90 %.2f ms, max %.2f ms (all verified)%n", mode,
            count, ms[count / 2], ms[(int) (count * 0.9)], ms[count - 1]);
      }
    }
    if (db.postgres()) db.dropSchema();
    db.close();
    TempDirs.delete(h2Dir);
  }

  /** A journal entry of kind {@code settle} for settlement rows written directly; its id. */
  static long settleEntry(Connection c, String ref) throws java.sql.SQLException {
    try (var st = c.createStatement()) {
      st.executeUpdate("INSERT INTO ledger_tx (kind, ref) VALUES ('settle', '" + ref + "')");
      try (ResultSet rs = st.executeQuery("SELECT id FROM ledger_tx WHERE ref = '" + ref + "'")) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  /**
   * Writes {@code n} settlements into {@code epoch} (ids {@code <prefix><9 digits>/1}; real leaf hashes
   * of short bodies; one journal entry), committing every 5,000; returns the receipt ids in order.
   */
  static String[] writeSettlements(Connection c, String prefix, int n, long epoch) throws Exception {
    long tx = settleEntry(c, "probe-" + prefix + "-" + epoch);
    String[] ids = new String[n];
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO settlement (receipt_id, job_id, tenant_id, node_id, tx_id,"
        + " charge_uact, refund_uact, receipt_body, batch_root, proof, epoch, leaf_hash) SELECT u.r, u.j, 't', 'n', ?, 1, 0,"
        + " u.b, 'root', '', ?, u.l FROM unnest(CAST(? AS VARCHAR ARRAY), CAST(? AS VARCHAR ARRAY),"
        + " CAST(? AS VARCHAR ARRAY), CAST(? AS VARCHAR ARRAY)) AS u(r, j, b, l)")) {
      for (int from = 0; from < n; from += 5_000) {
        int m = Math.min(5_000, n - from);
        String[] r = new String[m];
        String[] j = new String[m];
        String[] b = new String[m];
        String[] l = new String[m];
        for (int i = 0; i < m; i++) {
          j[i] = String.format("%s%09d", prefix, from + i);
          r[i] = j[i] + "/1";
          b[i] = "anneal-receipt/1\n" + r[i];
          l[i] = HexFormat.of().formatHex(MerkleTree.leafHash(b[i].getBytes(StandardCharsets.UTF_8)));
          ids[from + i] = r[i];
        }
        ps.setLong(1, tx);
        ps.setLong(2, epoch);
        ps.setArray(3, c.createArrayOf("varchar", r));
        ps.setArray(4, c.createArrayOf("varchar", j));
        ps.setArray(5, c.createArrayOf("varchar", b));
        ps.setArray(6, c.createArrayOf("varchar", l));
        ps.executeUpdate();
        c.commit();
      }
    }
    return ids;
  }

  /** The pre-V14 path, the proof from every leaf of the epoch (package-private in the ledger, reached by reflection). */
  private static Map<String, Object> allLeaves(Connection c, long epoch, String id) throws Exception {
    var m = SqlLedger.class.getDeclaredMethod("proofFromAllLeaves", Connection.class, Map.class, long.class, String.class);
    m.setAccessible(true);
    @SuppressWarnings("unchecked")
    Map<String, Object> out = (Map<String, Object>) m.invoke(null, c, new java.util.LinkedHashMap<String, Object>(), epoch, id);
    return out;
  }
}
