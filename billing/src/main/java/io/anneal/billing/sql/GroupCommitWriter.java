package io.anneal.billing.sql;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One writer thread that commits many small operations per transaction (group commit). Callers
 * never block: each submitted operation gets a future that completes after its transaction has
 * committed and is durable ({@link Database#durable}). A batch that fails on a transient conflict (a
 * deadlock or serialization failure, which the database resolves by aborting one transaction) is
 * retried whole, up to
 * {@value #TRANSIENT_ATTEMPTS} times. A batch that fails otherwise is split in halves, each retried
 * in queue order, until the failing operation is alone: it fails alone and the others still commit,
 * in about 2·log2(n) transactions rather than n.
 *
 * <p>Operations report expected refusals (insufficient funds, duplicate) as values, and throw only
 * for real failures; an operation must not commit or roll back itself.
 */
public final class GroupCommitWriter implements AutoCloseable, WriterStats {
  /** A unit of work inside a transaction. */
  @FunctionalInterface
  public interface Op<T> {
    T apply(Connection c) throws SQLException;
  }

  /**
   * A kind of operation that is cheaper done for many inputs at once (set-based SQL): consecutive
   * submissions of the same kind in a batch are handed over together, in order, and must get one
   * output each, in the same order.
   */
  @FunctionalInterface
  public interface BatchKind<I, O> {
    List<O> applyAll(Connection c, List<I> inputs) throws SQLException;

    /**
     * Where this kind stands in a lifecycle: between two plain operations, the writer applies every
     * pending input of the ranked kinds together, kind by kind in increasing rank (a job's admission
     * before its placement before its start...), instead of one statement group per consecutive run.
     * 0 (the default) means unranked: the kind groups only consecutive inputs and orders like a plain
     * operation.
     */
    default int rank() {
      return 0;
    }
  }

  /** A batch kind with a lifecycle rank (see {@link BatchKind#rank}); ranks must be > 0. */
  public static <I, O> BatchKind<I, O> ranked(int rank, BatchKind<I, O> kind) {
    if (rank <= 0) throw new IllegalArgumentException("rank must be > 0");
    return new BatchKind<>() {
      @Override
      public List<O> applyAll(Connection c, List<I> inputs) throws SQLException {
        return kind.applyAll(c, inputs);
      }

      @Override
      public int rank() {
        return rank;
      }
    };
  }

  private record Pending<T>(Op<T> op, CompletableFuture<T> future, BatchKind<Object, T> kind, Object input,
      boolean alone) {
    Pending(Op<T> op, CompletableFuture<T> future, BatchKind<Object, T> kind, Object input) {
      this(op, future, kind, input, false);
    }

    @SuppressWarnings("unchecked")
    void complete(Object value) {
      future.complete((T) value);
    }
  }

  private static final Logger LOG = Logger.getLogger(GroupCommitWriter.class.getName());
  /** Attempts of a batch that fails on a transient conflict, before it is split like any failed batch. */
  static final int TRANSIENT_ATTEMPTS = 6;
  private static final Pending<Object> POISON = new Pending<>(c -> null, new CompletableFuture<>(), null, null);

  private final Database db;
  private final int maxBatch;
  private final LinkedBlockingQueue<Pending<?>> queue = new LinkedBlockingQueue<>();
  private final Thread thread;
  private volatile boolean closed;
  private final String name;
  private volatile long committedOps;
  private volatile long commits;
  private volatile long transientRetries;
  private volatile long splits;
  private volatile long failedOps;

  public GroupCommitWriter(Database db, String name, int maxBatch) {
    this.db = db;
    this.name = name;
    this.maxBatch = maxBatch;
    this.thread = new Thread(this::loop, name);
    this.thread.setDaemon(true);
    this.thread.start();
  }

  /** The database this writer writes to (for work that needs a connection of its own). */
  public Database database() {
    return db;
  }

  public <T> CompletableFuture<T> submit(Op<T> op) {
    CompletableFuture<T> f = new CompletableFuture<>();
    if (closed) {
      f.completeExceptionally(new IllegalStateException("store is closed"));
      return f;
    }
    queue.add(new Pending<>(op, f, null, null));
    return f;
  }

  /**
   * Submits an operation that runs in a transaction of its own, after what was queued before it is
   * committed: one that must take a lock before any other write of its transaction (see
   * {@code SqlLedger.settlementBarrier}).
   */
  public <T> CompletableFuture<T> submitAlone(Op<T> op) {
    CompletableFuture<T> f = new CompletableFuture<>();
    if (closed) {
      f.completeExceptionally(new IllegalStateException("store is closed"));
      return f;
    }
    queue.add(new Pending<>(op, f, null, null, true));
    return f;
  }

  /** Submits one input of a batchable kind; completes after the commit with its output. */
  @SuppressWarnings("unchecked")
  public <I, O> CompletableFuture<O> submit(BatchKind<I, O> kind, I input) {
    CompletableFuture<O> f = new CompletableFuture<>();
    if (closed) {
      f.completeExceptionally(new IllegalStateException("store is closed"));
      return f;
    }
    queue.add(new Pending<>(null, f, (BatchKind<Object, O>) kind, input));
    return f;
  }

  public long committedOps() {
    return committedOps;
  }

  public long commits() {
    return commits;
  }

  /** The writer's thread name, as it appears in logs and metrics. */
  public String name() {
    return name;
  }

  /** Operations waiting for a transaction. */
  public int queued() {
    return queue.size();
  }

  /** Batches retried whole after a transient conflict (deadlock, serialization failure). */
  public long transientRetries() {
    return transientRetries;
  }

  /** Failed batches split in halves to find the operation that fails. */
  public long splits() {
    return splits;
  }

  /** Operations that failed (their futures completed exceptionally). */
  public long failedOps() {
    return failedOps;
  }

  private void loop() {
    List<Pending<?>> batch = new ArrayList<>(maxBatch);
    while (true) {
      batch.clear();
      try {
        Pending<?> first = queue.poll(1, TimeUnit.SECONDS);
        if (first == null) {
          if (closed) return;
          continue;
        }
        batch.add(first);
        queue.drainTo(batch, maxBatch - 1);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
      boolean stop = batch.remove(POISON);
      commitInTurn(batch);
      if (stop) {
        // drain whatever arrived before close() flipped the flag
        List<Pending<?>> rest = new ArrayList<>();
        queue.drainTo(rest);
        rest.remove(POISON);
        commitInTurn(rest);
        return;
      }
    }
  }

  /**
   * Commits the batch in queue order, each operation submitted alone in a transaction of its own. If
   * the store cannot be reached, the rest of the batch fails with the first transaction at once: each
   * would otherwise wait out its own connection timeout, and while the store is out of reach the
   * queue would grow faster than it drains (every caller waiting longer and longer for its answer).
   */
  private void commitInTurn(List<Pending<?>> batch) {
    List<List<Pending<?>>> groups = new ArrayList<>();
    int from = 0;
    for (int i = 0; i < batch.size(); i++) {
      if (!batch.get(i).alone()) continue;
      if (i > from) groups.add(batch.subList(from, i));
      groups.add(batch.subList(i, i + 1));
      from = i + 1;
    }
    if (from < batch.size()) groups.add(batch.subList(from, batch.size()));
    for (int g = 0; g < groups.size(); g++) {
      SQLException unreachable = commit(new ArrayList<>(groups.get(g)));
      if (unreachable == null) continue;
      for (List<Pending<?>> rest : groups.subList(g + 1, groups.size())) {
        failedOps += rest.size();
        for (Pending<?> p : rest) p.future().completeExceptionally(unreachable);
      }
      return;
    }
  }

  /** Commits one group (retried, or split, as the class says); the cause if the store could not be reached. */
  private SQLException commit(List<Pending<?>> batch) {
    for (int attempt = 1; ; attempt++) {
      Exception failure = tryCommit(batch);
      if (failure == null) return null;
      if (failure instanceof ConnectionFailure) {
        LOG.log(Level.WARNING, name + ": store connection failed", failure.getCause());
        failedOps += batch.size();
        for (Pending<?> p : batch) p.future().completeExceptionally(failure.getCause());
        return (SQLException) failure.getCause();
      }
      if (isTransient(failure) && attempt < TRANSIENT_ATTEMPTS) {
        // the connection is back in the pool before the retry: a retry never holds two
        transientRetries++;
        LOG.log(Level.FINE, name + ": transient conflict, batch of " + batch.size() + " retried", failure);
        backOff(attempt);
        continue;
      }
      if (batch.size() == 1) {
        failedOps++;
        batch.get(0).future().completeExceptionally(failure);
        LOG.log(Level.WARNING, name + ": store write failed", failure);
        return null;
      }
      splits++;
      int mid = batch.size() / 2;
      SQLException unreachable = commit(new ArrayList<>(batch.subList(0, mid)));
      if (unreachable != null) {
        failedOps += batch.size() - mid;
        for (Pending<?> p : batch.subList(mid, batch.size())) p.future().completeExceptionally(unreachable);
        return unreachable;
      }
      return commit(new ArrayList<>(batch.subList(mid, batch.size())));
    }
  }

  /**
   * A random pause before retrying a batch aborted by a conflict, up to 3, 7, 15, 31, 63 ms by attempt:
   * an immediate retry tends to meet the same other transaction at the same point again (under load
   * it could lose three times in a row, and a hold-and-release failed in CI that way).
   */
  private static void backOff(int attempt) {
    try {
      Thread.sleep(java.util.concurrent.ThreadLocalRandom.current().nextLong(1, 1L << Math.min(attempt + 2, 6)));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** The connection could not be had or set up: nothing ran, retrying the same way will not help. */
  private static final class ConnectionFailure extends Exception {
    ConnectionFailure(SQLException cause) {
      super(cause);
    }
  }

  /**
   * Applies the batch in one transaction and commits it, completing every future; or rolls back and
   * returns what failed, with the connection already returned to the pool.
   */
  private Exception tryCommit(List<Pending<?>> batch) {
    Object[] results = new Object[batch.size()];
    boolean committed = false;
    try (Connection c = db.connection()) {
      c.setAutoCommit(false);
      try {
        apply(c, batch, results);
        c.commit();
        committed = true;
      } catch (SQLException | RuntimeException e) {
        rollbackQuietly(c);
        // the connection broke (SQLState class 08, or the driver says so): the store, not an operation,
        // failed; splitting the batch to find a culprit would only wait for the store again and again
        if (e instanceof SQLException se && (se instanceof java.sql.SQLNonTransientConnectionException
            || se.getSQLState() != null && se.getSQLState().startsWith("08"))) {
          return new ConnectionFailure(se);
        }
        return e;
      }
    } catch (SQLException e) {
      if (!committed) return new ConnectionFailure(e);
      LOG.log(Level.FINE, name + ": closing a connection after its commit failed", e);
    }
    // counted before the callers hear of it: whoever saw its future complete sees the commit counted
    committedOps += batch.size();
    commits++;
    // callers hear of it once it is durable (at once but on an H2 file): the writer goes on meanwhile
    CompletableFuture<Void> durable = db.durable();
    if (durable.isDone() && !durable.isCompletedExceptionally()) {
      for (int i = 0; i < batch.size(); i++) batch.get(i).complete(results[i]);
    } else {
      List<Pending<?>> done = List.copyOf(batch); // completed later, on the checkpoints' thread
      durable.whenComplete((v, e) -> {
        for (int i = 0; i < done.size(); i++) {
          if (e == null) {
            done.get(i).complete(results[i]);
          } else {
            done.get(i).future().completeExceptionally(e);
          }
        }
      });
    }
    return null;
  }

  /**
   * A deadlock (PostgreSQL 40P01; H2 reports it as 40001) or a serialization failure (40001): the
   * database aborted this transaction to let another finish, and the same work may well succeed when
   * run again.
   */
  static boolean isTransient(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof SQLException s) {
        if ("40001".equals(s.getSQLState()) || "40P01".equals(s.getSQLState())) return true;
        if (s.getNextException() != null && s.getNextException() != s && isTransient(s.getNextException())) return true;
      }
    }
    return false;
  }

  private static void apply(Connection c, List<Pending<?>> batch, Object[] results) throws SQLException {
    for (int i = 0; i < batch.size(); ) {
      Pending<?> p = batch.get(i);
      if (p.kind() == null) {
        results[i] = p.op().apply(c);
        i++;
        continue;
      }
      if (p.kind().rank() == 0) {
        int j = i;
        List<Object> inputs = new ArrayList<>();
        while (j < batch.size() && batch.get(j).kind() == p.kind()) inputs.add(batch.get(j++).input());
        List<?> outs = p.kind().applyAll(c, inputs);
        if (outs.size() != inputs.size()) throw new IllegalStateException("a batch kind returned the wrong number of outputs");
        for (int k = 0; k < outs.size(); k++) results[i + k] = outs.get(k);
        i = j;
        continue;
      }
      // a segment of ranked inputs up to the next plain operation or unranked kind: by kind, in rank order
      int end = i;
      while (end < batch.size() && batch.get(end).kind() != null && batch.get(end).kind().rank() > 0) end++;
      java.util.TreeMap<Integer, java.util.LinkedHashMap<BatchKind<Object, ?>, List<Integer>>> byRank = new java.util.TreeMap<>();
      for (int k = i; k < end; k++) {
        BatchKind<Object, ?> kind = batch.get(k).kind();
        byRank.computeIfAbsent(kind.rank(), r -> new java.util.LinkedHashMap<>())
            .computeIfAbsent(kind, x -> new ArrayList<>()).add(k);
      }
      for (var kinds : byRank.values()) {
        for (var e : kinds.entrySet()) {
          List<Object> inputs = new ArrayList<>(e.getValue().size());
          for (int k : e.getValue()) inputs.add(batch.get(k).input());
          List<?> outs = e.getKey().applyAll(c, inputs);
          if (outs.size() != inputs.size()) throw new IllegalStateException("a batch kind returned the wrong number of outputs");
          for (int k = 0; k < outs.size(); k++) results[e.getValue().get(k)] = outs.get(k);
        }
      }
      i = end;
    }
  }

  private static void rollbackQuietly(Connection c) {
    try {
      c.rollback();
    } catch (SQLException ignored) {
      // the connection is returned to the pool and reset there
    }
  }

  /** Stops accepting work, commits what is queued, and waits for the writer to finish. */
  @Override
  public void close() {
    if (closed) return;
    closed = true;
    queue.add(POISON);
    try {
      thread.join(TimeUnit.SECONDS.toMillis(30));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
