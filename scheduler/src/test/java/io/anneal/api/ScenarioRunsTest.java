package io.anneal.api;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.sim.BmeSimulator;
import io.anneal.billing.sim.Scenario;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** One simulation at a time: a second one asked meanwhile is refused at once (409), a kept one is answered at once. */
class ScenarioRunsTest {
  @Test
  void aSecondRunWhileOneIsUnderWayIsRefusedAndAKeptOneIsNot() throws Exception {
    Vertx vertx = Vertx.vertx();
    try (ScenarioRuns runs = new ScenarioRuns(vertx)) {
      BmeSimulator.Config week = new BmeSimulator.Config(Scenario.SPIKE_10X, 168, 1, true, true);
      Future<JsonObject> first = runs.run(week);
      // asked right after: the first (a week of ticks, about a second) cannot have ended
      Future<JsonObject> second = runs.run(new BmeSimulator.Config(Scenario.STEADY, 2, 1, true, true));
      assertThat(second.failed()).isTrue();
      assertThat(((Problem) second.cause()).status()).isEqualTo(409);
      JsonObject done = first.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
      assertThat(done.getJsonArray("rows")).hasSize(168);
      Future<JsonObject> again = runs.run(week);
      assertThat(again.succeeded()).as("kept, answered without running").isTrue();
      assertThat(again.result()).isSameAs(done);
      // and the runner is free again
      assertThat(runs.run(new BmeSimulator.Config(Scenario.STEADY, 2, 1, true, true))
          .toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS).getJsonArray("rows")).hasSize(2);
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }
}
