package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.bus.Addresses;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A fleet whose nodes limit a job parameter differently (the CPU backend runs {@code matmul} up to
 * n = 2,048; other nodes further, or less far): a job goes only to a node whose limit it is within,
 * also when the smaller limit arrives with a node that joins after the job was queued. The service
 * runs its CPU node; the other nodes are registered on the bus as a worker registers, and their runs
 * are recorded instead of run.
 */
class MixedFleetLimitsTest {
  /** Runs the scheduler sent to each fake node, by node. */
  private final Map<String, List<JsonObject>> runs = new ConcurrentHashMap<>();

  private void fakeNode(TestService s, String nodeId, String gpuClass, int devices, Map<String, Long> limits) throws Exception {
    EventBus bus = s.service.vertx().eventBus();
    List<JsonObject> got = runs.computeIfAbsent(nodeId, k -> new CopyOnWriteArrayList<>());
    bus.<JsonObject>consumer(Addresses.workerRun(nodeId), m -> got.add(m.body()));
    bus.<JsonObject>consumer(Addresses.workerCancel(nodeId), m -> { });
    JsonArray ds = new JsonArray();
    for (int i = 0; i < devices; i++) {
      ds.add(new JsonObject().put("index", i).put("gpuClass", gpuClass).put("name", "Simulated " + gpuClass)
          .put("uuid", "SIM-" + nodeId + "-" + i).put("memoryMiB", 81_920).put("simulated", true).put("host", nodeId));
    }
    JsonObject l = new JsonObject();
    limits.forEach(l::put);
    int before = fleet(s).getInteger("total");
    bus.send(Addresses.NODE_REGISTER, new JsonObject().put("nodeId", nodeId).put("backend", "simulated").put("devices", ds)
        .put("kinds", new JsonArray().add("sleep").add("matmul")).put("limits", l));
    s.await(Duration.ofSeconds(10), () -> fleet(s).getInteger("total") == before + devices);
  }

  private static JsonObject fleet(TestService s) {
    try {
      return s.service.vertx().eventBus().<JsonObject>request(Addresses.FLEET, new JsonObject())
          .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).body();
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private static String submit(TestService s, JsonObject job) {
    var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, job.encode());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(202);
    return s.json(r).getString("id");
  }

  private static JsonObject matmul(int n) {
    return new JsonObject().put("kind", "matmul").put("gpus", 1).put("maxSeconds", 600)
        .put("params", new JsonObject().put("n", n).put("seed", 1));
  }

  private static JsonObject sleep(String gpuClass) {
    return new JsonObject().put("kind", "sleep").put("gpus", 1).put("gpuClass", gpuClass).put("maxSeconds", 600)
        .put("params", new JsonObject().put("ms", 120_000));
  }

  private List<String> runIds(String node) {
    return runs.getOrDefault(node, List.of()).stream().map(r -> r.getString("id")).toList();
  }

  /**
   * The API holds the fleet's shape from the scheduler's FLEET_SHAPE publications, which may reach it
   * a moment after a node joined. Here none reaches it after the service started (an interceptor drops
   * them): a job only the new node can run is still admitted, because the API asks the scheduler for
   * its shape of now before refusing; a job no node can run is still refused, with what the fleet has.
   */
  @Test
  void aJobOnlyAJustJoinedNodeCanRunIsAdmittedBeforeTheApiHearsOfTheNode(@TempDir Path dir) throws Exception {
    try (TestService s = TestService.start(dir)) {
      java.util.concurrent.atomic.AtomicInteger dropped = new java.util.concurrent.atomic.AtomicInteger();
      s.service.vertx().eventBus().addOutboundInterceptor(ctx -> {
        if (Addresses.FLEET_SHAPE.equals(ctx.message().address())) {
          dropped.incrementAndGet();
          return;
        }
        ctx.next();
      });
      fakeNode(s, "h100-node", "H100", 2, Map.of());
      assertThat(dropped.get()).as("FLEET_SHAPE publications dropped").isPositive();
      String id = submit(s, sleep("H100"));
      s.await(Duration.ofSeconds(10), () -> runIds("h100-node").contains(id));
      // the fresh shape refuses what no node runs, as the held one would
      var none = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleep("B200").encode());
      assertThat(none.statusCode()).as(none.body()).isEqualTo(422);
      assertThat(s.json(none).getString("detail")).contains("of class B200").contains("classes: H100, cpu");
      var tooLarge = s.post("/api/v1/jobs", TestService.DEMO_KEY, matmul(4096).encode());
      assertThat(tooLarge.statusCode()).as("the H100 node runs matmul without a limit").isEqualTo(202);
      s.delete("/api/v1/jobs/" + id, TestService.DEMO_KEY);
      s.delete("/api/v1/jobs/" + s.json(tooLarge).getString("id"), TestService.DEMO_KEY);
    }
  }

  @Test
  void aJobAboveANodesLimitGoesToANodeThatReachesIt(@TempDir Path dir) throws Exception {
    try (TestService s = TestService.start(dir)) {
      // 8 free devices against the CPU node's 4: best fit alone would put a 1-GPU job on the CPU node
      fakeNode(s, "big-node", "cpu", 8, Map.of());
      List<String> large = new ArrayList<>();
      large.add(submit(s, matmul(4096)));
      for (int i = 0; i < 2; i++) large.add(submit(s, matmul(4096)));
      s.await(Duration.ofSeconds(10), () -> runIds("big-node").size() == 3);
      assertThat(runIds("big-node")).containsExactlyInAnyOrderElementsOf(large);
      for (String id : large) assertThat(s.job(id).getString("state")).isEqualTo("PLACED");
      // within every node's limit: best fit again, the CPU node runs it
      String small = submit(s, matmul(64));
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(small).getString("state")));
      assertThat(runIds("big-node")).doesNotContain(small);
      for (String id : large) s.delete("/api/v1/jobs/" + id, TestService.DEMO_KEY);
    }
  }

  @Test
  void aQueuedJobIsMatchedAgainWhenANodeWithASmallerLimitJoins(@TempDir Path dir) throws Exception {
    try (TestService s = TestService.start(dir)) {
      fakeNode(s, "big-node", "H100", 1, Map.of());
      List<String> busy = new ArrayList<>();
      for (int i = 0; i < 4; i++) busy.add(submit(s, sleep("cpu")));
      busy.add(submit(s, sleep("H100")));
      s.await(Duration.ofSeconds(10), () -> fleet(s).getInteger("free") == 0);
      // within the fleet's smallest limit (2,048) when queued: it needs nothing of a node yet
      String within = submit(s, matmul(1200));
      s.await(Duration.ofSeconds(10), () -> fleet(s).getInteger("queued") == 1);
      // a node that runs matmul only up to 1,024 joins with free devices
      fakeNode(s, "tiny-node", "cpu", 2, Map.of("matmul.n", 1024L));
      String fits = submit(s, matmul(500));
      s.await(Duration.ofSeconds(10), () -> runIds("tiny-node").contains(fits));
      // the passes that placed the later job on the new node left the earlier one queued
      assertThat(runIds("tiny-node")).doesNotContain(within);
      assertThat(s.job(within).getString("state")).isEqualTo("QUEUED");
      // the CPU node, which reaches it, frees up: it runs there
      busy.subList(0, 4).forEach(id -> s.delete("/api/v1/jobs/" + id, TestService.DEMO_KEY));
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(within).getString("state")));
      assertThat(runIds("tiny-node")).doesNotContain(within);
      s.delete("/api/v1/jobs/" + fits, TestService.DEMO_KEY);
    }
  }
}
