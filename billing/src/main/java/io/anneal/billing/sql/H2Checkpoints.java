package io.anneal.billing.sql;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import javax.sql.DataSource;

/**
 * Group checkpoints of an H2 file database. H2 writes committed transactions to its file in the
 * background, up to its {@code WRITE_DELAY} (500 ms) later: a process killed meanwhile comes back
 * without them. {@code CHECKPOINT SYNC} writes everything committed so far and forces the file to the
 * device, so a crashed machine keeps it too. Each caller of {@link #after}
 * gets a future that completes once a checkpoint begun after its call has ended; callers that arrive
 * while one runs share the next. So a commit is acknowledged only once it is in the file, and the
 * writing is done on this thread, beside the writer that goes on with its next batch.
 *
 * <p>(With {@code WRITE_DELAY=0} H2 writes the file inside every commit, on the committing thread:
 * measured, that halves the H2 settlement benchmark; see docs/benchmarks.md.)
 */
final class H2Checkpoints implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(H2Checkpoints.class.getName());

  private final DataSource ds;
  private final Thread thread;
  private final Object lock = new Object();
  private List<CompletableFuture<Void>> waiting = new ArrayList<>();
  private boolean closed;

  H2Checkpoints(DataSource ds) {
    this.ds = ds;
    try (Connection c = ds.getConnection()) {
      H2WriteBuffer.raise(c);
    } catch (SQLException e) {
      LOG.log(Level.WARNING, "H2 store not reached to size its write buffer; the first checkpoint tries again", e);
    }
    this.thread = new Thread(this::loop, "anneal-h2-checkpoints");
    this.thread.setDaemon(true);
    this.thread.start();
  }

  /** Completes once everything committed before this call is in the database file. */
  CompletableFuture<Void> after() {
    CompletableFuture<Void> f = new CompletableFuture<>();
    synchronized (lock) {
      if (closed) {
        f.completeExceptionally(new IllegalStateException("store is closed"));
        return f;
      }
      waiting.add(f);
      lock.notifyAll();
    }
    return f;
  }

  private void loop() {
    while (true) {
      List<CompletableFuture<Void>> batch;
      synchronized (lock) {
        while (waiting.isEmpty() && !closed) {
          try {
            lock.wait();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            closed = true;
          }
        }
        if (waiting.isEmpty()) return; // closed, nothing left to write
        batch = waiting;
        waiting = new ArrayList<>();
      }
      SQLException failure = null;
      try (Connection c = ds.getConnection(); Statement st = c.createStatement()) {
        H2WriteBuffer.raise(c); // a store H2 opened again starts with its default
        st.execute("CHECKPOINT SYNC"); // written to the file and synced to the device (ADR 15 addendum)
      } catch (SQLException e) {
        failure = e;
        LOG.log(Level.WARNING, "H2 checkpoint failed: " + batch.size() + " commit(s) not known to be in the file", e);
      }
      for (CompletableFuture<Void> f : batch) {
        if (failure == null) {
          f.complete(null);
        } else {
          f.completeExceptionally(failure);
        }
      }
    }
  }

  /** Writes what callers wait for, then stops. */
  @Override
  public void close() {
    synchronized (lock) {
      closed = true;
      lock.notifyAll();
    }
    try {
      thread.join(TimeUnit.SECONDS.toMillis(30));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
