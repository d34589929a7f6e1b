package io.anneal.billing.sql;

import java.lang.reflect.Field;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.h2.engine.SessionLocal;
import org.h2.jdbc.JdbcConnection;
import org.h2.mvstore.MVStore;

/**
 * How much changed data an H2 file store keeps in memory before it writes it out on its own.
 *
 * <p>H2's MVStore copies a B-tree page on every change and writes the changed pages whenever their
 * estimated size passes its auto-commit buffer: at most 19 MB, which a settlement transaction of 2,000
 * receipts (six B-tree entries each, ~1 KB rows) passes several times. Each such write serializes every
 * changed page again, including the hot ones (the right edges of the time-ordered indexes, the escrow
 * pages in flight) that the rest of the transaction changes once more. The group checkpoints
 * ({@link H2Checkpoints}) write everything committed anyway, once per commit group; a buffer that a
 * group does not fill leaves the writing to them. Measured on the settlement benchmark: H2's
 * serialization thread's CPU per receipt roughly halved, warm rounds ~22k → ~27–31k receipts/s
 * (docs/benchmarks.md, sixteenth session).
 *
 * <p>H2 has no setting for it in a database URL (the MVStore builder's {@code autoCommitBufferSize}
 * is not passed through), so the field is set on the open store. What is written and when a commit
 * is durable do not change: commits are acknowledged after a synced checkpoint either way. Should a
 * later H2 rename the field, the store keeps H2's default and a warning says so once.
 */
final class H2WriteBuffer {
  private static final Logger LOG = Logger.getLogger(H2WriteBuffer.class.getName());
  /** Above this, the benchmark showed no further gain (64, 256 and 1,024 MB measured alike). */
  static final int MAX_BYTES = 64 << 20;
  private static final AtomicBoolean TOLD = new AtomicBoolean();

  private H2WriteBuffer() {}

  /** The buffer this process gives its H2 store: 64 MB, or a sixteenth of the heap if that is less. */
  static int target() {
    return (int) Math.min(MAX_BYTES, Runtime.getRuntime().maxMemory() / 16);
  }

  /**
   * Raises the buffer of the embedded H2 store behind {@code c} to {@link #target} when it is
   * smaller (a store H2 opened again, e.g. after its last connection closed, starts at its default).
   * Returns the buffer in force afterwards, in bytes, or -1 when there is no embedded H2 store or it
   * cannot be changed (logged once).
   */
  static int raise(Connection c) {
    try {
      if (!(c.unwrap(JdbcConnection.class).getSession() instanceof SessionLocal session)) return -1; // over TCP
      MVStore store = session.getDatabase().getStore().getMvStore();
      int now = store.getAutoCommitMemory();
      int wanted = target();
      if (now >= wanted || now == 0) return now; // 0: an in-memory store, which never writes out on its own
      Field f = MVStore.class.getDeclaredField("autoCommitMemory");
      f.setAccessible(true);
      f.setInt(store, wanted);
      if (TOLD.compareAndSet(false, true)) {
        LOG.info("H2 store writes changed pages on its own after " + (wanted >> 20) + " MB (H2's default: "
            + (now >> 20) + " MB); commits are still acknowledged after a synced checkpoint");
      }
      return store.getAutoCommitMemory();
    } catch (SQLException | ReflectiveOperationException | RuntimeException e) {
      if (TOLD.compareAndSet(false, true)) {
        LOG.log(Level.WARNING, "H2 store keeps its default write buffer (settlement is slower): " + e, e);
      }
      return -1;
    }
  }
}
