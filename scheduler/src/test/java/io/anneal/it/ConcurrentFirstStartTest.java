package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.ledger.TestDatabases;
import io.anneal.config.ConfigLoader;
import io.anneal.service.AnnealService;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Instances starting together on a new PostgreSQL store (a cluster's first start) each seed the vault, the
 * admin key and the demo tenant: all of them start, and each seed is written once.
 */
class ConcurrentFirstStartTest {
  @TempDir Path dir;

  @Test
  void instancesStartingTogetherOnANewStoreAllStartAndSeedOnce() throws Exception {
    TestDatabases.requirePostgres();
    String schema = "first_" + Long.toHexString(System.nanoTime());
    String url = TestDatabases.localPostgresUrl() + "&currentSchema=" + schema;
    int n = 3;
    CountDownLatch go = new CountDownLatch(1);
    List<CompletableFuture<AnnealService>> starts = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      // an API instance each: the first-start setup runs whatever the roles
      AnnealService s = new AnnealService(ConfigLoader.load(new String[] {"--http-port", "0", "--data-dir",
          dir.resolve("i" + i).toString(), "--db-url", url, "--roles", "api"},
          Map.of("ANNEAL_DEMO_TENANT", "demo:" + TestService.DEMO_KEY + ":100", "ANNEAL_ADMIN_KEY", TestService.ADMIN_KEY)));
      starts.add(CompletableFuture.runAsync(() -> {
        try {
          go.await();
        } catch (InterruptedException e) {
          throw new java.util.concurrent.CompletionException(e);
        }
      }).thenCompose(v -> s.start().toCompletionStage()).thenApply(v -> s));
    }
    go.countDown();
    List<AnnealService> started = new ArrayList<>();
    try {
      for (var s : starts) started.add(s.get(90, TimeUnit.SECONDS));
      assertThat(started).hasSize(n);
      try (Connection c = DriverManager.getConnection(url); var st = c.createStatement()) {
        try (ResultSet rs = st.executeQuery("SELECT COUNT(*) FROM ledger_tx WHERE ref = 'vault-seed'")) {
          rs.next();
          assertThat(rs.getLong(1)).as("the vault seeded once").isEqualTo(1);
        }
        try (ResultSet rs = st.executeQuery("SELECT COUNT(*) FROM tenant WHERE name = 'demo'")) {
          rs.next();
          assertThat(rs.getLong(1)).isEqualTo(1);
        }
        try (ResultSet rs = st.executeQuery("SELECT COUNT(*) FROM bme_request WHERE ref = 'deposit:demo-tenant:demo'")) {
          rs.next();
          assertThat(rs.getLong(1)).as("the demo deposit made once").isEqualTo(1);
        }
        try (ResultSet rs = st.executeQuery("SELECT COUNT(*) FROM ledger_tx WHERE ref = 'mint-request:demo-tenant:demo'")) {
          rs.next();
          assertThat(rs.getLong(1)).as("its AKT taken in once").isEqualTo(1);
        }
      }
    } finally {
      for (AnnealService s : started) s.stop();
      // one that did not start has closed what it opened; those still starting are stopped as they end
      for (var f : starts) f.thenAccept(AnnealService::stop);
      try (Connection c = DriverManager.getConnection(TestDatabases.localPostgresUrl()); var st = c.createStatement()) {
        st.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
      }
    }
  }

  /**
   * The race the instances' first start runs again on, made to happen: a second transaction seeding the
   * vault while the first one's seed is not committed waits for it, then fails on a duplicate key (SQL state
   * 23505); run again, it finds the seed and writes nothing.
   */
  @Test
  void aSeedRacedByAnotherInstanceFailsOnADuplicateKeyAndRunAgainWritesNothing() throws Exception {
    TestDatabases.requirePostgres();
    String schema = "race_" + Long.toHexString(System.nanoTime());
    io.anneal.billing.sql.Database db = io.anneal.billing.sql.Database.open(TestDatabases.localPostgresUrl(), schema, 4);
    try {
      db.migrate("db/ledger", "flyway_ledger_history");
      try (Connection first = db.connection(); Connection second = db.connection(); Connection watch = db.connection()) {
        first.setAutoCommit(false);
        second.setAutoCommit(false);
        io.anneal.billing.ledger.SqlLedger.fundVault(first, "vault-seed", 5_000_000L);
        CompletableFuture<?> raced = CompletableFuture.supplyAsync(() -> {
          try {
            return io.anneal.billing.ledger.SqlLedger.fundVault(second, "vault-seed", 5_000_000L);
          } catch (java.sql.SQLException e) {
            throw new java.util.concurrent.CompletionException(e);
          }
        });
        // the second waits on the first's rows (a lock wait PostgreSQL shows), then the first commits
        TestDatabases.awaitLockWaiter(db);
        first.commit();
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> raced.get(10, TimeUnit.SECONDS))
            .hasCauseInstanceOf(java.sql.SQLException.class)
            .satisfies(e -> assertThat(((java.sql.SQLException) e.getCause()).getSQLState()).isEqualTo("23505"));
        second.rollback();
        // run again, as the first start does: the seed is there, nothing is written
        assertThat(io.anneal.billing.ledger.SqlLedger.fundVault(second, "vault-seed", 5_000_000L)).isFalse();
        second.commit();
        assertThat(io.anneal.billing.ledger.SqlLedger.balance(watch, io.anneal.billing.ledger.Accounts.VAULT, "uakt"))
            .isEqualTo(5_000_000L);
      }
    } finally {
      db.dropSchema();
      db.close();
    }
  }
}
