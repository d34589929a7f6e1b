package io.anneal.service;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Keeps Micrometer's double-registration messages useful. Vert.x's metrics register their gauges
 * again each time they are used ({@code vertx.eventbus.handlers} for every event-bus consumer,
 * {@code vertx.eventbus.pending}, {@code vertx.http.server.active.requests}, …; the registrations of
 * one gauge share one counter, so nothing is lost), and Micrometer warns about the second: a warning
 * at every start that says nothing is wrong. Micrometer also warns only once per JVM and logs later
 * double registrations at debug level, so that warning would hide one of our own meters registered
 * twice.
 *
 * <p>Installed on the logger {@code io.micrometer.core.instrument.MeterRegistry} (SLF4J reaches it
 * through java.util.logging): repeated registrations of Vert.x's own meters ({@code vertx.*}) are
 * dropped, every other meter registered twice is a warning (once per meter), and the registry's
 * other messages pass at INFO and above as before.
 */
public final class MeterRegistryLog {
  static final String LOGGER = "io.micrometer.core.instrument.MeterRegistry";
  private static final String DOUBLE = "has been already registered";
  private static final String VERTX_METER = "MeterId{name='vertx.";
  /** Held strongly: java.util.logging keeps loggers weakly, and a collected one forgets its filter. */
  private static final Logger LOG = Logger.getLogger(LOGGER);
  private static final Set<String> WARNED = ConcurrentHashMap.newKeySet();

  static {
    // debug level reaches the filter, which decides what shows
    LOG.setLevel(Level.FINE);
    LOG.setFilter(r -> {
      String msg = r.getMessage();
      if (msg != null && msg.contains(DOUBLE)) {
        if (msg.contains(VERTX_METER)) return false;
        int end = msg.indexOf(')');
        if (!WARNED.add(end > 0 ? msg.substring(0, end) : msg)) return false;
        r.setLevel(Level.WARNING);
        return true;
      }
      return r.getLevel().intValue() >= Level.INFO.intValue();
    });
  }

  private MeterRegistryLog() {}

  /** Installs the filter (idempotent; the class initializer does the work). */
  public static void install() {
    // see the static initializer
  }
}
