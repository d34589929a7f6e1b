package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.pgclient.PgConnectOptions;
import java.sql.SQLException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The Vert.x SQL client adapter's pieces that need no database. */
class SqlClientLedgerStoreTest {
  @Test
  void connectionOptionsComeFromTheStoresJdbcUrl() {
    PgConnectOptions o = SqlClientLedgerStore.pgOptions(
        "jdbc:postgresql://db.example:6543/anneal?user=svc&password=s%40cret&currentSchema=ledger", null);
    assertThat(o.getHost()).isEqualTo("db.example");
    assertThat(o.getPort()).isEqualTo(6543);
    assertThat(o.getDatabase()).isEqualTo("anneal");
    assertThat(o.getUser()).isEqualTo("svc");
    assertThat(o.getPassword()).isEqualTo("s@cret");
    assertThat(o.getProperties()).containsEntry("search_path", "ledger");
    // defaults, and a schema given beside the URL wins
    PgConnectOptions d = SqlClientLedgerStore.pgOptions("jdbc:postgresql://127.0.0.1/test", "t_1");
    assertThat(d.getPort()).isEqualTo(5432);
    assertThat(d.getUser()).isEqualTo("postgres");
    assertThat(d.getProperties()).containsEntry("search_path", "t_1");
  }

  @Test
  void aUrlWithoutAHostIsRefusedWithoutShowingItsPassword() {
    assertThatThrownBy(() -> SqlClientLedgerStore.pgOptions("jdbc:postgresql:test?user=a&password=hunter2", null))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("needs a PostgreSQL URL with a host")
        .hasMessageNotContaining("hunter2");
  }

  @Test
  void tlsSettingsThatTheReactiveClientWouldIgnoreAreRefused() {
    assertThatThrownBy(() -> SqlClientLedgerStore.pgOptions("jdbc:postgresql://db.example/anneal?user=a&sslmode=verify-full",
        null)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'sslmode'")
        .hasMessageContaining("--ledger-client jdbc");
  }

  @Test
  void parameterMarkersAreNumberedInOrder() {
    assertThat(SqlClientLedgerStore.numbered("SELECT $, $ FROM t WHERE a = $")).isEqualTo("SELECT $1, $2 FROM t WHERE a = $3");
    assertThat(SqlClientLedgerStore.numbered(SqlLedger.INSERT_SETTLEMENTS)).contains("$16").doesNotContain("$17");
  }

  @Test
  void receiptsFailAtOnceWhenTheDatabaseCannotBeReachedWithoutSplittingTheirBatch() throws Exception {
    io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
    try {
      // nothing listens on port 1: every connection is refused
      SqlClientLedgerStore store = SqlClientLedgerStore.postgres(vertx, "jdbc:postgresql://127.0.0.1:1/test?user=postgres",
          null, 1, 100, (cls, at) -> null, System::currentTimeMillis, 3600);
      var key = java.security.KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
      List<io.vertx.core.Future<Settlement>> out = new java.util.ArrayList<>();
      for (int i = 0; i < 3; i++) {
        var r = new io.anneal.billing.receipt.Receipt("j" + i + "/0", "j" + i, "t1", "n1", "H100", 1, false, 1, 1, 0, 1, 2,
            "SUCCEEDED", "");
        out.add(store.settle(new io.anneal.billing.receipt.ReceiptSigner(key.getPrivate()).sign(List.of(r)).get(0)));
      }
      for (var f : out) {
        assertThatThrownBy(() -> f.toCompletionStage().toCompletableFuture().get(30, java.util.concurrent.TimeUnit.SECONDS))
            .hasCauseInstanceOf(Throwable.class);
      }
      assertThat(store.stats().failedOps()).isEqualTo(3);
      assertThat(store.stats().splits()).isZero();
      assertThat(store.stats().commits()).isZero();
      assertThat(store.stats().queued()).isZero();
      store.close();
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, java.util.concurrent.TimeUnit.SECONDS);
    }
  }

  @Test
  void aLaneGoesOnOnceABatchCommitsAndAnswersItsReceiptsOnlyOnceDurable() throws Exception {
    io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
    try {
      java.util.concurrent.atomic.AtomicInteger transactions = new java.util.concurrent.atomic.AtomicInteger();
      List<io.vertx.core.Promise<Void>> checkpoints = new java.util.concurrent.CopyOnWriteArrayList<>();
      // batches of one; each transaction "commits" at once; durability is completed by the test
      ClientLanes lanes = new ClientLanes(vertx.getOrCreateContext(), 1, 1, receipts -> {
        transactions.incrementAndGet();
        return io.vertx.core.Future.succeededFuture(receipts.stream()
            .map(r -> new Settlement(r.receipt().receiptId(), r.receipt().jobId(), 7, 0, 1, false, null)).toList());
      }, () -> {
        io.vertx.core.Promise<Void> p = io.vertx.core.Promise.promise();
        checkpoints.add(p);
        return p.future();
      });
      var key = java.security.KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
      List<io.vertx.core.Future<Settlement>> out = new java.util.ArrayList<>();
      for (int i = 0; i < 2; i++) {
        var r = new io.anneal.billing.receipt.Receipt("j" + i + "/0", "j" + i, "t1", "n1", "H100", 1, false, 1, 1, 0, 1, 2,
            "SUCCEEDED", "");
        out.add(lanes.settle(new io.anneal.billing.receipt.ReceiptSigner(key.getPrivate()).sign(List.of(r)).get(0)));
      }
      long deadline = System.currentTimeMillis() + 10_000;
      while (checkpoints.size() < 2 && System.currentTimeMillis() < deadline) Thread.sleep(5);
      // the second batch committed while the first one's checkpoint had not ended
      assertThat(transactions.get()).isEqualTo(2);
      assertThat(checkpoints).hasSize(2);
      assertThat(out).noneMatch(io.vertx.core.Future::isComplete);
      checkpoints.get(0).complete();
      assertThat(out.get(0).toCompletionStage().toCompletableFuture().get(10, java.util.concurrent.TimeUnit.SECONDS)
          .chargeUact()).isEqualTo(7);
      assertThat(out.get(1).isComplete()).isFalse();
      // committed but not known to be durable: failed, so that its worker delivers it again
      checkpoints.get(1).fail(new SQLException("checkpoint failed", "HY000"));
      assertThatThrownBy(() -> out.get(1).toCompletionStage().toCompletableFuture().get(10,
          java.util.concurrent.TimeUnit.SECONDS)).hasMessageContaining("checkpoint failed");
      assertThat(lanes.commits()).isEqualTo(2);
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, java.util.concurrent.TimeUnit.SECONDS);
    }
  }

  @Test
  void deadlocksSerializationFailuresAndH2LockTimeoutsAreRetriedOtherErrorsAreNot() {
    assertThat(ClientLanes.isTransient(new RuntimeException(new SQLException("deadlock", "40P01")))).isTrue();
    assertThat(ClientLanes.isTransient(new SQLException("serialization", "40001"))).isTrue();
    assertThat(ClientLanes.isTransient(new SQLException("lock timeout", "HYT00"))).isTrue();
    assertThat(ClientLanes.isTransient(new SQLException("too long", "22001"))).isFalse();
    assertThat(ClientLanes.sqlState(new java.net.ConnectException("refused"))).isNull();
  }
}
