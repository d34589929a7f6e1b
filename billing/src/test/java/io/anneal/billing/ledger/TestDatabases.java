package io.anneal.billing.ledger;

import io.anneal.billing.sql.Database;
import java.sql.Connection;
import java.sql.DriverManager;
import java.util.UUID;

/**
 * Where PostgreSQL tests run: a Testcontainers server when Docker is there, else the local server
 * ({@code ANNEAL_TEST_PG_URL}, default {@code jdbc:postgresql://127.0.0.1:5432/test?user=postgres}).
 * Under CI ({@code CI=true}) an unreachable PostgreSQL fails the tests instead of skipping them.
 */
public final class TestDatabases {
  private TestDatabases() {}

  public static String localPostgresUrl() {
    return System.getenv().getOrDefault("ANNEAL_TEST_PG_URL", "jdbc:postgresql://127.0.0.1:5432/test?user=postgres");
  }

  public static boolean localPostgresReachable() {
    try (Connection c = DriverManager.getConnection(localPostgresUrl())) {
      return c.isValid(2);
    } catch (Exception e) {
      return false;
    }
  }

  /**
   * For tests that need the local PostgreSQL: skips when it is unreachable, but fails under CI=true,
   * where .ci/run starts it, so a PostgreSQL suite never silently skips in CI.
   */
  public static void requirePostgres() {
    boolean up = localPostgresReachable();
    if (requiredByCi() && !up) {
      throw new IllegalStateException("CI=true but PostgreSQL is not reachable at " + localPostgresUrl());
    }
    org.junit.jupiter.api.Assumptions.assumeTrue(up, "local PostgreSQL not reachable at " + localPostgresUrl());
  }

  /**
   * Waits (up to 10 s) until some session of {@code db}'s database waits for a lock another holds:
   * for tests that must see a transaction blocked before they let the blocker go.
   */
  public static void awaitLockWaiter(Database db) throws Exception {
    String sql = db.postgres()
        ? "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        : "SELECT COUNT(*) FROM INFORMATION_SCHEMA.SESSIONS WHERE BLOCKER_ID IS NOT NULL";
    long until = System.nanoTime() + 10_000_000_000L;
    try (Connection c = db.connection(); var ps = c.prepareStatement(sql)) {
      while (true) {
        try (var rs = ps.executeQuery()) {
          rs.next();
          if (rs.getLong(1) > 0) return;
        }
        if (System.nanoTime() > until) throw new AssertionError("no session waited for a lock within 10 s");
        Thread.sleep(10);
      }
    }
  }

  public static boolean requiredByCi() {
    return "true".equalsIgnoreCase(System.getenv("CI"));
  }

  /** A fresh schema on the given PostgreSQL, migrated; drop it with {@link Database#dropSchema()}. */
  public static Database freshPostgres(String jdbcUrl) {
    String schema = "t_" + UUID.randomUUID().toString().replace("-", "").substring(0, 16);
    Database db = Database.open(jdbcUrl, schema, 4);
    db.migrate("db/ledger", "flyway_ledger_history");
    return db;
  }

  public static Database freshH2() {
    Database db = Database.h2Memory("ledger-" + UUID.randomUUID(), 4);
    db.migrate("db/ledger", "flyway_ledger_history");
    return db;
  }
}
