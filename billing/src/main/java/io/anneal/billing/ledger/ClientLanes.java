package io.anneal.billing.ledger;

import io.anneal.billing.receipt.SignedReceipt;
import io.anneal.billing.sql.WriterStats;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.pgclient.PgException;
import java.sql.SQLException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * Receipts queued per job-hash lane on one Vert.x context, each lane settling its queue in one
 * transaction at a time, up to {@code maxBatch} receipts in it: the group commit of the Vert.x SQL
 * client ledger, with no thread of its own. A receipt goes to the lane of its job, so a job's receipts
 * settle one after another. A batch aborted by a deadlock, a serialization failure or (H2) a lock wait
 * timeout is retried whole, up to {@link #TRANSIENT_ATTEMPTS} times; one the database refuses for
 * another reason is split in halves until the receipt it refuses fails alone; one that gets no answer
 * from the database (a lost connection) fails at once, since there is nothing to isolate.
 *
 * <p>A lane goes on with its next batch once a transaction has committed; the batch's receipts are
 * answered once it is also durable (on an H2 file, after a synced checkpoint that others share), so
 * the checkpoint's writing runs beside the next transaction instead of between the two.
 */
final class ClientLanes implements WriterStats {
  private static final Logger LOG = Logger.getLogger(ClientLanes.class.getName());
  static final int TRANSIENT_ATTEMPTS = 6;

  /** A receipt waiting in its lane, and who waits for its settlement. */
  private record Pending(SignedReceipt receipt, Promise<Settlement> promise) {}

  /** One lane: its queue and whether a transaction of it is in flight. Touched on {@link #context} only. */
  private final class Lane {
    final ArrayDeque<Pending> queue = new ArrayDeque<>();
    boolean busy;

    void drain() {
      if (busy || queue.isEmpty()) return;
      busy = true;
      List<Pending> batch = new ArrayList<>();
      while (!queue.isEmpty() && batch.size() < maxBatch) batch.add(queue.poll());
      queued.addAndGet(-batch.size());
      commit(batch, 1).onComplete(ar -> {
        busy = false;
        drain();
      });
    }
  }

  private final Context context;
  private final Lane[] lanes;
  private final int maxBatch;
  /** Settles a batch in one transaction: one settlement per receipt, in order. */
  private final Function<List<SignedReceipt>, Future<List<Settlement>>> transaction;
  /** Completes once everything committed before the call is durable. */
  private final Supplier<Future<Void>> durable;
  /** Batches committed whose receipts wait for {@link #durable}. */
  private final AtomicInteger awaitingDurable = new AtomicInteger();
  private final AtomicLong commits = new AtomicLong();
  private final AtomicLong committedOps = new AtomicLong();
  private final AtomicLong retries = new AtomicLong();
  private final AtomicLong splits = new AtomicLong();
  private final AtomicLong failedOps = new AtomicLong();
  private final AtomicInteger queued = new AtomicInteger();
  private volatile boolean closed;

  ClientLanes(Context context, int count, int maxBatch, Function<List<SignedReceipt>, Future<List<Settlement>>> transaction,
      Supplier<Future<Void>> durable) {
    if (count < 1) throw new IllegalArgumentException("settlement lanes must be >= 1, not " + count);
    this.context = context;
    this.lanes = new Lane[count];
    for (int i = 0; i < count; i++) lanes[i] = new Lane();
    this.maxBatch = maxBatch;
    this.transaction = transaction;
    this.durable = durable;
  }

  Future<Settlement> settle(SignedReceipt receipt) {
    Promise<Settlement> p = Promise.promise();
    Lane lane = lanes.length == 1 ? lanes[0] : lanes[Math.floorMod(receipt.receipt().jobId().hashCode(), lanes.length)];
    context.runOnContext(v -> {
      if (closed) {
        p.fail("the ledger store is closed");
        return;
      }
      lane.queue.add(new Pending(receipt, p));
      queued.incrementAndGet();
      lane.drain();
    });
    return p.future();
  }

  /** Settles a batch; completes when each receipt's promise is. */
  private Future<Void> commit(List<Pending> batch, int attempt) {
    return transaction.apply(batch.stream().map(Pending::receipt).toList()).transform(ar -> {
      if (ar.succeeded()) {
        commits.incrementAndGet();
        committedOps.addAndGet(batch.size());
        List<Settlement> settled = ar.result();
        awaitingDurable.incrementAndGet();
        durable.get().onComplete(d -> {
          awaitingDurable.decrementAndGet();
          for (int i = 0; i < batch.size(); i++) {
            if (d.succeeded()) {
              batch.get(i).promise().complete(settled.get(i));
            } else {
              // committed, but not known to be durable: the worker delivers again and is answered
              // with the settlement if it was kept, or it settles now if it was lost
              batch.get(i).promise().fail(d.cause());
            }
          }
        });
        return Future.succeededFuture(); // the lane goes on while the checkpoint runs
      }
      Throwable e = ar.cause();
      if (isTransient(e) && attempt < TRANSIENT_ATTEMPTS) {
        retries.incrementAndGet();
        // after a random pause (up to 3, 7, 15, 31, 63 ms), as the store's writer does: at once, it
        // tends to meet the same other transaction at the same point again
        long pause = java.util.concurrent.ThreadLocalRandom.current().nextLong(1, 1L << Math.min(attempt + 2, 6));
        return context.owner().timer(pause).compose(v -> commit(batch, attempt + 1));
      }
      if (batch.size() > 1 && sqlState(e) != null) {
        // the database refused something in the batch: split it until the receipt it refuses is alone
        splits.incrementAndGet();
        int half = batch.size() / 2;
        return commit(batch.subList(0, half), 1).compose(v -> commit(batch.subList(half, batch.size()), 1));
      }
      // one receipt the database refuses, or no answer from the database (nothing to isolate): the
      // receipts fail, and their workers deliver them again later
      LOG.warning("could not settle " + (batch.size() == 1 ? "receipt " + batch.get(0).receipt().receipt().receiptId()
          : batch.size() + " receipts") + ": " + e);
      failedOps.addAndGet(batch.size());
      for (Pending p : batch) p.promise().fail(e);
      return Future.succeededFuture();
    });
  }

  /**
   * Whether a failure is a conflict that the same transaction, run again, may not meet: a deadlock or
   * a serialization failure, or on H2 a lock wait that timed out (HYT00: its connection waited on the
   * store's writer's).
   */
  static boolean isTransient(Throwable e) {
    String state = sqlState(e);
    return "40001".equals(state) || "40P01".equals(state) || "HYT00".equals(state);
  }

  /** The SQL state of the database's error in {@code e}'s causes, or null when the database did not answer with one. */
  static String sqlState(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      String state = t instanceof PgException pg ? pg.getSqlState() : t instanceof SQLException s ? s.getSQLState() : null;
      if (state != null) return state;
    }
    return null;
  }

  int count() {
    return lanes.length;
  }

  /** Refuses new receipts and waits (up to 30 s) for the queued ones to settle; call off the context. */
  void closeAndDrain() {
    Promise<Void> drained = Promise.promise();
    context.runOnContext(v -> {
      closed = true;
      waitIdle(drained);
    });
    try {
      drained.future().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      LOG.warning("closing the ledger store with receipts still queued: " + e);
    }
  }

  private void waitIdle(Promise<Void> done) {
    for (Lane l : lanes) {
      if (l.busy || !l.queue.isEmpty() || awaitingDurable.get() > 0) {
        context.owner().setTimer(5, id -> waitIdle(done));
        return;
      }
    }
    done.complete();
  }

  @Override
  public String name() {
    return "anneal-settlement-vertx";
  }

  @Override
  public int queued() {
    return queued.get();
  }

  @Override
  public long commits() {
    return commits.get();
  }

  @Override
  public long committedOps() {
    return committedOps.get();
  }

  @Override
  public long transientRetries() {
    return retries.get();
  }

  @Override
  public long splits() {
    return splits.get();
  }

  @Override
  public long failedOps() {
    return failedOps.get();
  }
}
