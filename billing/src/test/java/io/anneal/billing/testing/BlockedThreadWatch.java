package io.anneal.billing.testing;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Records every warning of Vert.x's blocked-thread checker (logger
 * {@code io.vertx.core.impl.BlockedThreadChecker}, through SLF4J to java.util.logging) so that a
 * test can fail when an event loop or worker was blocked. Installed once on the root logger.
 */
public final class BlockedThreadWatch {
  private static final List<String> SEEN = new CopyOnWriteArrayList<>();
  private static final Logger ROOT = Logger.getLogger("");

  static {
    ROOT.addHandler(new Handler() {
      @Override
      public void publish(LogRecord r) {
        String name = String.valueOf(r.getLoggerName());
        if (r.getLevel().intValue() >= Level.WARNING.intValue()
            && (name.endsWith("BlockedThreadChecker") || name.equals("vertx-blocked-thread-checker"))) {
          SEEN.add(String.valueOf(r.getMessage()));
        }
      }

      @Override
      public void flush() {}

      @Override
      public void close() {}
    });
  }

  private BlockedThreadWatch() {}

  /** Makes sure the watch is installed (call before starting Vert.x). */
  public static void install() {
    // the static initializer does the work
  }

  public static List<String> warnings() {
    return List.copyOf(SEEN);
  }

  public static void clear() {
    SEEN.clear();
  }

  /** Throws if the checker warned since the last clear, and clears. */
  public static void assertSilent() {
    if (SEEN.isEmpty()) return;
    List<String> seen = List.copyOf(SEEN);
    SEEN.clear();
    throw new AssertionError("Vert.x's blocked-thread checker warned: " + seen);
  }
}
