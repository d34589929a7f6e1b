package io.anneal.bench;

import io.anneal.billing.JdbcLedgerStore;
import io.anneal.billing.SettlementLanes;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.merkle.MerkleTree;
import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * What an epoch's close does to the store's writer (admissions, job states, and H2's settlements go
 * through it): two ended epochs of N settlements each; one is closed as the JDBC adapter closed them until now, in one
 * transaction on the writer behind the settlement barrier ({@code submitAlone(SqlLedger.closeEpochs)}),
 * the other as {@code JdbcLedgerStore.closeEpochs} closes now (the barrier on the writer, then the
 * epoch read on a connection of its own). Meanwhile a trivial operation is submitted to the writer
 * every 5 ms; the probe reports the close's duration and how long those operations waited.
 *
 * <p>{@code java -cp bench/target/benchmarks.jar io.anneal.bench.EpochCloseStallProbe h2|pg N [writer-first|store-first]}
 */
public final class EpochCloseStallProbe {
  private EpochCloseStallProbe() {}

  public static void main(String[] args) throws Exception {
    String target = args.length > 0 ? args[0] : "h2";
    int n = args.length > 1 ? Integer.parseInt(args[1]) : 300_000;
    boolean writerFirst = !(args.length > 2 && args[2].equals("store-first"));
    Database db = target.equals("pg")
        ? Database.open(System.getenv().getOrDefault("ANNEAL_BENCH_PG_URL", "jdbc:postgresql://127.0.0.1:5432/test?user=postgres"),
            "bench_" + Long.toHexString(System.nanoTime()), 4)
        : Database.h2File(Files.createTempDirectory("anneal-stall"), 4);
    db.migrate("db/ledger", "flyway_ledger_history");
    long hour = 3_600_000L;
    try (Connection c = db.connection()) {
      c.setAutoCommit(false);
      write(c, n, 1);
      write(c, n, 2);
    }
    GroupCommitWriter writer = new GroupCommitWriter(db, "probe-writer", 2000);
    JdbcLedgerStore store = new JdbcLedgerStore(writer, SettlementLanes.shared(writer), (cls, at) -> 1L,
        System::currentTimeMillis, 3600);
    // epoch 1 closes with "now" in epoch 2, epoch 2 with "now" in epoch 3
    for (int round = 0; round < 2; round++) {
      boolean onWriter = (round == 0) == writerFirst;
      long now = (round + 2) * hour;
      long t0 = System.nanoTime();
      CompletableFuture<List<SqlLedger.EpochClose>> close = onWriter
          ? writer.submitAlone(c -> SqlLedger.closeEpochs(c, now, 3600))
          : store.closeEpochs(now).toCompletionStage().toCompletableFuture();
      List<Double> waits = new ArrayList<>();
      while (!close.isDone()) {
        long s = System.nanoTime();
        writer.submit(c -> {
          try (var st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT 1")) {
            rs.next();
          }
          return null;
        }).get(60, TimeUnit.SECONDS);
        waits.add((System.nanoTime() - s) / 1e6);
        TimeUnit.MILLISECONDS.sleep(5);
      }
      double closeSecs = (System.nanoTime() - t0) / 1e9;
      List<SqlLedger.EpochClose> closed = close.get();
      if (closed.size() != 1 || closed.get(0).receipts() != n) throw new IllegalStateException("closed " + closed);
      Collections.sort(waits);
      System.out.printf("%s, %d settlements, close %s: %.2f s; writer operations during it: %d, median wait %.1f ms,"
              + " max %.1f ms%n", target, n, onWriter ? "on the writer behind the barrier (before)" : "barrier, then its own connection (now)",
          closeSecs, waits.size(), waits.get(waits.size() / 2), waits.get(waits.size() - 1));
    }
    store.close();
    writer.close();
    if (db.postgres()) db.dropSchema();
    db.close();
  }

  /** N settlements in {@code epoch}, as {@link EpochProofProbe} writes them. */
  private static void write(Connection c, int n, long epoch) throws Exception {
    long tx;
    try (var st = c.createStatement()) {
      st.executeUpdate("INSERT INTO ledger_tx (kind, ref) VALUES ('settle', 'stall-probe-" + epoch + "')");
      try (ResultSet rs = st.executeQuery("SELECT id FROM ledger_tx WHERE ref = 'stall-probe-" + epoch + "'")) {
        rs.next();
        tx = rs.getLong(1);
      }
    }
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
          j[i] = String.format("e%d-j%09d", epoch, from + i);
          r[i] = j[i] + "/1";
          b[i] = "anneal-receipt/1\n" + r[i];
          l[i] = HexFormat.of().formatHex(MerkleTree.leafHash(b[i].getBytes(StandardCharsets.UTF_8)));
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
  }
}
