package io.anneal.billing.sql;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** How one group commit applies plain operations and batch kinds, and hands each caller its own result. */
class GroupCommitWriterTest {
  /** The order in which inputs reached the database, as "kind:input". */
  private final List<String> applied = Collections.synchronizedList(new ArrayList<>());

  private GroupCommitWriter.BatchKind<String, String> kind(String name, int rank) {
    GroupCommitWriter.BatchKind<String, String> k = (c, inputs) -> {
      List<String> out = new ArrayList<>();
      for (String in : inputs) {
        applied.add(name + ":" + in);
        out.add(name + "(" + in + ") of " + inputs.size());
      }
      return out;
    };
    return rank == 0 ? k : GroupCommitWriter.ranked(rank, k);
  }

  @Test
  void rankedKindsApplyInRankOrderBetweenPlainOperationsAndEveryCallerGetsItsOwnResult() throws Exception {
    try (Database db = Database.h2Memory("gcw-" + System.nanoTime(), 2);
        GroupCommitWriter w = new GroupCommitWriter(db, "test-writer", 1000)) {
      var admit = kind("admit", 10);
      var place = kind("place", 20);
      var unranked = kind("free", 0);
      // the first operation holds the writer (its own batch already taken) so that everything below
      // lands in the next batch, together
      CountDownLatch hold = holdWriter(w);
      var f1 = w.submit(place, "j1");
      var f2 = w.submit(admit, "j2");
      var f3 = w.submit(place, "j2");
      var f4 = w.submit(admit, "j3");
      var barrier = w.submit(c -> {
        applied.add("plain:barrier");
        return "plain";
      });
      var f5 = w.submit(place, "j3");
      var f6 = w.submit(unranked, "u1");
      var f7 = w.submit(unranked, "u2");
      var f8 = w.submit(admit, "j4");
      hold.countDown();
      assertThat(f8.get(10, TimeUnit.SECONDS)).isEqualTo("admit(j4) of 1");
      assertThat(applied).containsExactly(
          "admit:j2", "admit:j3", // ranked before place within the segment, in arrival order
          "place:j1", "place:j2",
          "plain:barrier", // a plain operation is a barrier: nothing moves across it
          "place:j3",
          "free:u1", "free:u2", // an unranked kind groups consecutive inputs only and keeps its place
          "admit:j4");
      assertThat(f1.get()).isEqualTo("place(j1) of 2");
      assertThat(f2.get()).isEqualTo("admit(j2) of 2");
      assertThat(f3.get()).isEqualTo("place(j2) of 2");
      assertThat(f4.get()).isEqualTo("admit(j3) of 2");
      assertThat(barrier.get()).isEqualTo("plain");
      assertThat(f5.get()).isEqualTo("place(j3) of 1");
      assertThat(f6.get()).isEqualTo("free(u1) of 2");
      assertThat(f7.get()).isEqualTo("free(u2) of 2");
    }
  }

  @Test
  void anOperationSubmittedAloneRunsInATransactionOfItsOwnInQueueOrder() throws Exception {
    try (Database db = Database.h2Memory("gcw-" + System.nanoTime(), 2);
        GroupCommitWriter w = new GroupCommitWriter(db, "test-writer", 1000)) {
      CountDownLatch hold = holdWriter(w);
      // queued together, drained as one batch: each operation records how many commits preceded it
      var a = w.submit(c -> w.commits());
      var b = w.submit(kind("k", 0), "x").thenApply(r -> -1L);
      var alone = w.submitAlone(c -> w.commits());
      var after = w.submit(c -> w.commits());
      long before = w.commits();
      hold.countDown();
      assertThat(after.get(10, TimeUnit.SECONDS)).isEqualTo(before + 3); // gate, {a, b}, {alone}, then {after}
      assertThat(a.get()).isEqualTo(before + 1);
      assertThat(b.get()).isEqualTo(-1L);
      assertThat(alone.get()).as("after a and b committed, before what came next").isEqualTo(before + 2);
    }
  }

  /** Holds the writer in an operation of its own until the returned latch is counted down. */
  private static CountDownLatch holdWriter(GroupCommitWriter w) throws InterruptedException {
    CountDownLatch hold = new CountDownLatch(1);
    CountDownLatch holding = new CountDownLatch(1);
    w.submit(c -> {
      holding.countDown();
      try {
        hold.await(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return null;
    });
    assertThat(holding.await(10, TimeUnit.SECONDS)).isTrue();
    return hold;
  }

  private static GroupCommitWriter.Op<Integer> insert(int id) {
    return c -> {
      try (var ps = c.prepareStatement("INSERT INTO t (id) VALUES (?)")) {
        ps.setInt(1, id);
        return ps.executeUpdate();
      }
    };
  }

  private static List<Integer> rows(Database db) throws java.sql.SQLException {
    List<Integer> ids = new ArrayList<>();
    try (var c = db.connection(); var rs = c.createStatement().executeQuery("SELECT id FROM t ORDER BY seq")) {
      while (rs.next()) ids.add(rs.getInt(1));
    }
    return ids;
  }

  private static void createTable(Database db) throws java.sql.SQLException {
    try (var c = db.connection(); var st = c.createStatement()) {
      st.execute("CREATE TABLE t (seq BIGINT GENERATED ALWAYS AS IDENTITY, id INT PRIMARY KEY)");
    }
  }

  @Test
  void aFailingOperationFailsAloneAndTheOthersCommitInQueueOrderInLogarithmicallyManyTransactions() throws Exception {
    try (Database db = Database.h2Memory("gcw-" + System.nanoTime(), 2);
        GroupCommitWriter w = new GroupCommitWriter(db, "test-writer", 1000)) {
      createTable(db);
      List<CompletableFuture<Integer>> fs = new ArrayList<>();
      CountDownLatch hold = holdWriter(w);
      long commitsBefore;
      try {
        commitsBefore = w.commits();
        for (int i = 0; i < 64; i++) {
          int id = i;
          // operation 37 fails for a reason that retrying will not change
          fs.add(id == 37 ? w.submit(c -> {
            throw new java.sql.SQLException("bad input 37", "22000");
          }) : w.submit(insert(id)));
        }
      } finally {
        hold.countDown();
      }
      for (int i = 0; i < 64; i++) {
        if (i == 37) continue;
        assertThat(fs.get(i).get(10, TimeUnit.SECONDS)).isEqualTo(1);
      }
      assertThat(fs.get(37)).failsWithin(10, TimeUnit.SECONDS).withThrowableOfType(java.util.concurrent.ExecutionException.class)
          .withMessageContaining("bad input 37");
      List<Integer> expected = new ArrayList<>();
      for (int i = 0; i < 64; i++) if (i != 37) expected.add(i);
      assertThat(rows(db)).as("every other operation committed once, in queue order").isEqualTo(expected);
      // 64 -> 32 + 32 -> ... -> 1 + 1: the half without the failure commits at each of the 6 levels
      assertThat(w.splits()).isEqualTo(6);
      assertThat(w.commits() - commitsBefore).as("transactions committed after the gate's").isEqualTo(1 + 6);
      assertThat(w.failedOps()).isEqualTo(1);
      assertThat(w.transientRetries()).isZero();
    }
  }

  @Test
  void aBatchAbortedByATransientConflictIsRetriedWholeAndCommitsOnce() throws Exception {
    try (Database db = Database.h2Memory("gcw-" + System.nanoTime(), 2);
        GroupCommitWriter w = new GroupCommitWriter(db, "test-writer", 1000)) {
      createTable(db);
      java.util.concurrent.atomic.AtomicInteger attempts = new java.util.concurrent.atomic.AtomicInteger();
      List<CompletableFuture<Integer>> fs = new ArrayList<>();
      CountDownLatch hold = holdWriter(w);
      long commitsBefore;
      try {
        commitsBefore = w.commits();
        for (int i = 0; i < 10; i++) fs.add(w.submit(insert(i)));
        // as the database aborting this transaction to break a deadlock, on the first attempt only
        fs.add(w.submit(c -> {
          if (attempts.incrementAndGet() == 1) throw new java.sql.SQLException("deadlock detected", "40P01");
          return 0;
        }));
        for (int i = 10; i < 20; i++) fs.add(w.submit(insert(i)));
      } finally {
        hold.countDown();
      }
      for (var f : fs) f.get(10, TimeUnit.SECONDS);
      assertThat(attempts.get()).isEqualTo(2);
      assertThat(w.transientRetries()).isEqualTo(1);
      assertThat(w.splits()).as("retried whole, not split").isZero();
      assertThat(w.commits() - commitsBefore).as("the gate's transaction, then the batch's").isEqualTo(2);
      // the first attempt's inserts were rolled back: each row is there once (the primary key would refuse a second)
      List<Integer> expected = new ArrayList<>();
      for (int i = 0; i < 20; i++) expected.add(i);
      assertThat(rows(db)).isEqualTo(expected);
    }
  }

  @Test
  void aConflictThatPersistsIsRetriedALimitedNumberOfTimesThenFailsAlone() throws Exception {
    try (Database db = Database.h2Memory("gcw-" + System.nanoTime(), 2);
        GroupCommitWriter w = new GroupCommitWriter(db, "test-writer", 1000)) {
      createTable(db);
      java.util.concurrent.atomic.AtomicInteger attempts = new java.util.concurrent.atomic.AtomicInteger();
      CountDownLatch hold = holdWriter(w);
      CompletableFuture<Integer> a;
      CompletableFuture<Integer> stuck;
      try {
        a = w.submit(insert(1));
        stuck = w.submit(c -> {
          attempts.incrementAndGet();
          throw new java.sql.SQLException("could not serialize access", "40001");
        });
      } finally {
        hold.countDown();
      }
      assertThat(a.get(10, TimeUnit.SECONDS)).isEqualTo(1);
      assertThat(stuck).failsWithin(10, TimeUnit.SECONDS).withThrowableOfType(java.util.concurrent.ExecutionException.class)
          .withMessageContaining("could not serialize access");
      // the pair, TRANSIENT_ATTEMPTS times; then alone, as many times
      assertThat(attempts.get()).isEqualTo(2 * GroupCommitWriter.TRANSIENT_ATTEMPTS);
      assertThat(rows(db)).containsExactly(1);
    }
  }

  @Test
  void sqlStatesOfDeadlocksAndSerializationFailuresAreTransientOthersAreNot() {
    assertThat(GroupCommitWriter.isTransient(new java.sql.SQLException("x", "40P01"))).isTrue();
    assertThat(GroupCommitWriter.isTransient(new RuntimeException(new java.sql.SQLException("x", "40001")))).isTrue();
    java.sql.SQLException batch = new java.sql.SQLException("batch entry 3 failed", "XX000");
    batch.setNextException(new java.sql.SQLException("deadlock", "40P01"));
    assertThat(GroupCommitWriter.isTransient(batch)).as("pgjdbc puts the cause of a failed batch in the next exception")
        .isTrue();
    assertThat(GroupCommitWriter.isTransient(new java.sql.SQLException("dup", "23505"))).isFalse();
    assertThat(GroupCommitWriter.isTransient(new java.sql.SQLException("no state"))).isFalse();
    assertThat(GroupCommitWriter.isTransient(new IllegalStateException("x"))).isFalse();
  }
  /**
   * The store goes away (an H2 TCP server stopped) while operations wait behind a running one: the
   * first transaction of the next batch cannot get a connection, and every operation after it fails
   * at once with that same cause, rather than each group waiting out its own connection timeout.
   */
  @Test
  void whenTheStoreCannotBeReachedTheRestOfTheBatchFailsWithTheFirstTransactionsCause() throws Exception {
    org.h2.tools.Server server = org.h2.tools.Server.createTcpServer("-tcpPort", "0", "-ifNotExists").start();
    try (Database db = Database.open("jdbc:h2:tcp://127.0.0.1:" + server.getPort() + "/mem:gcw-" + System.nanoTime()
        + ";DB_CLOSE_DELAY=-1", null, 2);
        GroupCommitWriter w = new GroupCommitWriter(db, "test-writer", 1000)) {
      CountDownLatch inside = new CountDownLatch(1);
      CountDownLatch release = new CountDownLatch(1);
      CompletableFuture<Object> running = w.submit(c -> {
        inside.countDown();
        try {
          release.await(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        return null;
      });
      assertThat(inside.await(30, TimeUnit.SECONDS)).isTrue();
      GroupCommitWriter.Op<Object> noop = c -> null;
      // queued behind it, in four transactions: alone, the plain one, alone, the plain one
      List<CompletableFuture<Object>> queued = List.of(w.submitAlone(noop), w.submit(noop), w.submitAlone(noop), w.submit(noop));
      server.stop();
      release.countDown();
      List<Throwable> causes = new ArrayList<>();
      for (CompletableFuture<Object> f : queued) {
        try {
          f.get(30, TimeUnit.SECONDS);
          causes.add(null);
        } catch (java.util.concurrent.ExecutionException e) {
          causes.add(e.getCause());
        }
      }
      assertThat(causes).doesNotContainNull();
      assertThat(causes.get(0)).isInstanceOf(java.sql.SQLException.class);
      for (Throwable t : causes.subList(1, causes.size())) assertThat(t).isSameAs(causes.get(0));
      assertThat(running).isCompletedExceptionally();
    } finally {
      server.stop();
    }
  }
}
