package io.anneal.bench;

import io.anneal.billing.JdbcLedgerStore;
import io.anneal.billing.SettlementLanes;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.Collections;
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
    java.nio.file.Path h2Dir = target.equals("pg") ? null : Files.createTempDirectory("anneal-stall"); // removed at the end
    Database db = target.equals("pg")
        ? Database.open(System.getenv().getOrDefault("ANNEAL_BENCH_PG_URL", "jdbc:postgresql://127.0.0.1:5432/test?user=postgres"),
            "bench_" + Long.toHexString(System.nanoTime()), 4)
        : Database.h2File(h2Dir, 4);
    db.migrate("db/ledger", "flyway_ledger_history");
    long hour = 3_600_000L;
    try (Connection c = db.connection()) {
      c.setAutoCommit(false);
      EpochProofProbe.writeSettlements(c, "e1-j", n, 1);
      EpochProofProbe.writeSettlements(c, "e2-j", n, 2);
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
    TempDirs.delete(h2Dir);
  }

}
