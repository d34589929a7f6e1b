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
      CountDownLatch hold = new CountDownLatch(1);
      CountDownLatch holding = new CountDownLatch(1);
      // the first operation holds the writer (its own batch already taken) so that everything below
      // lands in the next batch, together
      CompletableFuture<Object> gate = w.submit(c -> {
        holding.countDown();
        try {
          hold.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        return null;
      });
      assertThat(holding.await(10, TimeUnit.SECONDS)).isTrue();
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
      gate.get(10, TimeUnit.SECONDS);
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
      CountDownLatch hold = new CountDownLatch(1);
      CountDownLatch holding = new CountDownLatch(1);
      CompletableFuture<Object> gate = w.submit(c -> {
        holding.countDown();
        try {
          hold.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        return null;
      });
      assertThat(holding.await(10, TimeUnit.SECONDS)).isTrue();
      // queued together, drained as one batch: each operation records how many commits preceded it
      var a = w.submit(c -> w.commits());
      var b = w.submit(kind("k", 0), "x").thenApply(r -> -1L);
      var alone = w.submitAlone(c -> w.commits());
      var after = w.submit(c -> w.commits());
      long before = w.commits();
      hold.countDown();
      gate.get(10, TimeUnit.SECONDS);
      assertThat(after.get(10, TimeUnit.SECONDS)).isEqualTo(before + 3); // gate, {a, b}, {alone}, then {after}
      assertThat(a.get()).isEqualTo(before + 1);
      assertThat(b.get()).isEqualTo(-1L);
      assertThat(alone.get()).as("after a and b committed, before what came next").isEqualTo(before + 2);
    }
  }
}
