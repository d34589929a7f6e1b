package io.anneal.billing;

import io.anneal.billing.ledger.LedgerStore;
import io.anneal.billing.ledger.Settlement;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.receipt.SignedReceipt;
import io.anneal.billing.sql.GroupCommitWriter;
import io.vertx.core.Future;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.LongSupplier;

/**
 * The ledger port on JDBC (ADR 1, 11): receipts settle on the store's group-commit writer (H2), in
 * its transactions and ranked in its lifecycle, or on settlement lanes of their own (PostgreSQL);
 * the rest goes through the store's writer.
 */
public final class JdbcLedgerStore implements LedgerStore {
  private final GroupCommitWriter writer;
  private final SettlementLanes lanes;
  /** Receipts that reach a writer together settle together, set-based. */
  private final GroupCommitWriter.BatchKind<SignedReceipt, Settlement> settleKind;
  private final long epochSeconds;
  /** Closes epochs one at a time, so that two closes never compute the same epoch. */
  private final java.util.concurrent.ExecutorService closer = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "anneal-epoch-closer");
    t.setDaemon(true);
    return t;
  });

  /**
   * @param lanes where receipts settle ({@link SettlementLanes#shared} for the store's writer); closed with this store
   * @param clock the settlement time, read once the settlement barrier is held
   */
  public JdbcLedgerStore(GroupCommitWriter writer, SettlementLanes lanes, SqlLedger.PriceLookup prices, LongSupplier clock,
      long epochSeconds) {
    this.writer = writer;
    this.lanes = lanes;
    this.epochSeconds = epochSeconds;
    // ranked after a job's finish (40) and before its SETTLED mark (60) in the store's lifecycle
    this.settleKind = GroupCommitWriter.ranked(50, (c, receipts) -> SqlLedger.settleAll(c, receipts, prices, clock, epochSeconds));
  }

  @Override
  public Future<Settlement> settle(SignedReceipt receipt) {
    return future(lanes.laneOf(receipt.receipt().jobId()).submit(settleKind, receipt));
  }

  @Override
  public Future<Optional<Settlement>> settlementOf(String receiptId) {
    return future(writer.submit(c -> SqlLedger.settlementOf(c, receiptId)));
  }

  @Override
  public Future<List<SqlLedger.EpochClose>> closeEpochs(long nowMs) {
    // first the barrier, in a transaction of its own on the writer (ADR 11): settlements in flight
    // finish, later ones file into later epochs; then the ended epochs are read and closed on a
    // connection of the closer's own, so that neither the writer (admissions, job states, H2's
    // settlements) nor the settlement lanes wait for the close (ADR 13)
    return future(writer.submitAlone(c -> {
      SqlLedger.settlementBarrier(c);
      return null;
    }).thenApplyAsync(v -> {
      try (Connection c = writer.database().connection()) {
        c.setAutoCommit(false);
        try {
          List<SqlLedger.EpochClose> closed = SqlLedger.closeEndedEpochs(c, nowMs, epochSeconds);
          c.commit();
          return closed;
        } catch (SQLException | RuntimeException e) {
          c.rollback();
          throw e;
        }
      } catch (SQLException e) {
        throw new java.util.concurrent.CompletionException(e);
      }
    }, closer).thenCompose(closed -> writer.database().durable().thenApply(v -> closed)));
  }

  @Override
  public Future<Optional<String>> nodeKey(String nodeId) {
    return future(writer.submit(c -> SqlLedger.nodeKey(c, nodeId)));
  }

  @Override
  public Future<List<io.anneal.billing.ledger.NodeKey>> nodeKeys(String nodeId) {
    return future(writer.submit(c -> SqlLedger.nodeKeys(c, nodeId)));
  }

  @Override
  public Future<Boolean> registerNode(String nodeId, String publicKeyB64) {
    return future(writer.submit(c -> SqlLedger.registerNode(c, nodeId, publicKeyB64)));
  }

  @Override
  public Future<Void> recordRefused(String receiptId, String nodeId, String reason) {
    return future(writer.submit(c -> {
      SqlLedger.recordRefusedReceipt(c, receiptId, nodeId, reason);
      return null;
    }));
  }

  @Override
  public Future<List<SqlLedger.RefusedReceipt>> refusedReceipts(int limit) {
    return future(writer.submit(c -> SqlLedger.refusedReceipts(c, limit)));
  }

  /** The lanes receipts settle on (for metrics). */
  public SettlementLanes lanes() {
    return lanes;
  }

  @Override
  public String describe() {
    return "jdbc, " + (lanes.ownLanes() == 0 ? "settling on the store's writer" : lanes.ownLanes() + " settlement lanes");
  }

  /** Closes the lanes of its own and lets a close in progress finish; the store's writer is its owner's to close. */
  @Override
  public void close() {
    lanes.close();
    closer.shutdown();
    try {
      if (!closer.awaitTermination(30, java.util.concurrent.TimeUnit.SECONDS)) closer.shutdownNow();
    } catch (InterruptedException e) {
      closer.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  private static <T> Future<T> future(CompletionStage<T> stage) {
    return Future.fromCompletionStage(stage);
  }
}
