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
