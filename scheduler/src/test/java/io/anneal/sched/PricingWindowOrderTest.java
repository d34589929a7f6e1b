package io.anneal.sched;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.util.ArrayDeque;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Windows taken from schedulers before this one are sent in time order with this scheduler's own (ADR 22):
 * billing pays each window from the latest end it paid (ADR 21), so one sent after a later one is paid for
 * none of its seconds.
 */
class PricingWindowOrderTest {
  private static JsonObject window(long startMs, long endMs) {
    return new JsonObject().put("startMs", startMs).put("endMs", endMs).put("partial", false);
  }

  /** The seconds billing pays for windows sent in this order: each from the latest end paid (ADR 21). */
  private static long paidSeconds(List<JsonObject> sent) {
    long paidUntil = Long.MIN_VALUE;
    long paid = 0;
    for (JsonObject w : sent) {
      long from = Math.max(w.getLong("startMs"), paidUntil);
      if (w.getLong("endMs") > from) {
        paid += w.getLong("endMs") - from;
        paidUntil = w.getLong("endMs");
      }
    }
    return paid / 1000;
  }

  @Test
  void aDeposedLeadersLaterWindowIsSentAfterTheOwnWindowsItFollows() {
    // this scheduler took over at 100 s; billing has not stored its windows 100–110 s and 110–120 s; the
    // deposed leader went on sampling and saved 120–125 s before it learnt
    ArrayDeque<JsonObject> own = new ArrayDeque<>(List.of(window(100_000, 110_000), window(110_000, 120_000)));
    List<JsonObject> taken = List.of(window(120_000, 125_000));
    List<JsonObject> queue = SchedulerVerticle.inTimeOrder(own, taken, false);
    assertThat(queue).extracting(w -> w.getLong("startMs")).containsExactly(100_000L, 110_000L, 120_000L);
    assertThat(paidSeconds(queue)).isEqualTo(25);
    // sent ahead of the own windows, as before, billing would have paid its 5 s and none of the 20 before
    assertThat(paidSeconds(List.of(taken.get(0), own.getFirst(), own.getLast()))).isEqualTo(5);
  }

  @Test
  void overlappingWindowsOfTwoSchedulersAreOrderedByStartThenEnd() {
    ArrayDeque<JsonObject> own = new ArrayDeque<>(List.of(window(100_000, 110_000)));
    List<JsonObject> taken = List.of(window(95_000, 112_000), window(90_000, 95_000), window(95_000, 100_000));
    List<JsonObject> queue = SchedulerVerticle.inTimeOrder(own, taken, false);
    assertThat(queue).extracting(w -> w.getLong("startMs") + ".." + w.getLong("endMs"))
        .containsExactly("90000..95000", "95000..100000", "95000..112000", "100000..110000");
    assertThat(paidSeconds(queue)).isEqualTo(22); // 90–112 s, each second once
  }

  @Test
  void theWindowBeingSentStaysFirst() {
    ArrayDeque<JsonObject> own = new ArrayDeque<>(List.of(window(110_000, 120_000), window(120_000, 130_000)));
    List<JsonObject> taken = List.of(window(100_000, 105_000));
    List<JsonObject> queue = SchedulerVerticle.inTimeOrder(own, taken, true);
    assertThat(queue).extracting(w -> w.getLong("startMs")).containsExactly(110_000L, 100_000L, 120_000L);
    assertThat(SchedulerVerticle.inTimeOrder(own, taken, false)).extracting(w -> w.getLong("startMs"))
        .containsExactly(100_000L, 110_000L, 120_000L);
    assertThat(SchedulerVerticle.inTimeOrder(new ArrayDeque<>(), taken, true)).containsExactly(taken.get(0));
  }
}
