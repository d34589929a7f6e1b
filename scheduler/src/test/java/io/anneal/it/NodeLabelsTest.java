package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.bus.Addresses;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Node labels (ADR 29): an admin labels nodes, a job that asks for labels runs only on a node carrying
 * them all, a job asking for labels no node carries is refused at submit, and the labels outlive a
 * restart. The service runs its CPU node; the other nodes are registered on the bus as a worker
 * registers, and their runs are recorded instead of run (as in MixedFleetLimitsTest).
 */
class NodeLabelsTest {
  private final Map<String, List<JsonObject>> runs = new ConcurrentHashMap<>();

  private void fakeNode(TestService s, String nodeId, int devices) throws Exception {
    EventBus bus = s.service.vertx().eventBus();
    List<JsonObject> got = runs.computeIfAbsent(nodeId, k -> new CopyOnWriteArrayList<>());
    bus.<JsonObject>consumer(Addresses.workerRun(nodeId), m -> got.add(m.body()));
    bus.<JsonObject>consumer(Addresses.workerCancel(nodeId), m -> { });
    JsonArray ds = new JsonArray();
    for (int i = 0; i < devices; i++) {
      ds.add(new JsonObject().put("index", i).put("gpuClass", "cpu").put("name", "Simulated cpu").put("uuid", "SIM-" + nodeId + "-" + i)
          .put("memoryMiB", 16_384).put("simulated", true).put("host", nodeId));
    }
    int before = fleet(s).getInteger("total");
    // a registration that claims a label of its own: only an operator's labels count
    bus.send(Addresses.NODE_REGISTER, new JsonObject().put("nodeId", nodeId).put("backend", "simulated").put("devices", ds)
        .put("kinds", new JsonArray().add("sleep").add("matmul")).put("labels", new JsonObject().put("tier", "certified")));
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

  private static JsonObject sleep(Map<String, String> labels) {
    JsonObject job = new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 600)
        .put("params", new JsonObject().put("ms", 120_000));
    if (!labels.isEmpty()) job.put("nodeLabels", new JsonObject(Map.copyOf(labels)));
    return job;
  }

  private static String submit(TestService s, JsonObject job) {
    var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, job.encode());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(202);
    return s.json(r).getString("id");
  }

  private List<String> runIds(String node) {
    return runs.getOrDefault(node, List.of()).stream().map(r -> r.getString("id")).toList();
  }

  private static JsonObject labelsOf(TestService s, String node) {
    var r = s.get("/api/v1/nodes/" + node + "/labels", null);
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    return s.json(r).getJsonObject("labels");
  }

  @Test
  void jobsAskingForLabelsRunOnlyOnNodesAnOperatorGaveThem(@TempDir Path dir) throws Exception {
    try (TestService s = TestService.start(dir)) {
      fakeNode(s, "cert-a", 1);
      fakeNode(s, "cert-b", 1);
      Map<String, String> certified = Map.of("tier", "certified");
      // the nodes' own claim counts for nothing: no node carries the label yet, so the job is refused
      var none = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleep(certified).encode());
      assertThat(none.statusCode()).as(none.body()).isEqualTo(422);
      assertThat(s.json(none).getString("type")).endsWith("/unsatisfiable");
      assertThat(s.json(none).getString("detail")).contains("no node carries the labels tier=certified");
      assertThat(labelsOf(s, "cert-a")).isEmpty();

      // bad labels and callers other than an admin change nothing
      String admin = TestService.ADMIN_KEY;
      var asTenant = s.put("/api/v1/nodes/cert-a/labels", TestService.DEMO_KEY, "{\"labels\":{\"tier\":\"certified\"}}");
      assertThat(asTenant.statusCode()).as(asTenant.body()).isEqualTo(403);
      var badName = s.put("/api/v1/nodes/cert-a/labels", admin, "{\"labels\":{\"Tier\":\"certified\",\"anneal.kind.sleep\":\"true\"}}");
      assertThat(badName.statusCode()).as(badName.body()).isEqualTo(422);
      assertThat(s.json(badName).getJsonArray("errors").stream().map(e -> ((JsonObject) e).getString("field")).toList())
          .containsExactlyInAnyOrder("labels.Tier", "labels.anneal.kind.sleep");
      var badValue = s.put("/api/v1/nodes/cert-a/labels", admin, "{\"labels\":{\"tier\":7}}");
      assertThat(badValue.statusCode()).as(badValue.body()).isEqualTo(422);
      var missing = s.put("/api/v1/nodes/cert-a/labels", admin, "{}");
      assertThat(missing.statusCode()).as(missing.body()).isEqualTo(422);
      var unknownNode = s.put("/api/v1/nodes/nowhere/labels", admin, "{\"labels\":{\"tier\":\"certified\"}}");
      assertThat(unknownNode.statusCode()).as(unknownNode.body()).isEqualTo(404);
      var badJob = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleep(Map.of("tier", "certified!")).encode());
      assertThat(badJob.statusCode()).as(badJob.body()).isEqualTo(422);
      assertThat(s.json(badJob).getJsonArray("errors").getJsonObject(0).getString("field")).isEqualTo("nodeLabels.tier");
      assertThat(labelsOf(s, "cert-a")).isEmpty();

      var labelled = s.put("/api/v1/nodes/cert-a/labels", admin, "{\"labels\":{\"tier\":\"certified\",\"region\":\"eu\"}}");
      assertThat(labelled.statusCode()).as(labelled.body()).isEqualTo(200);
      assertThat(s.json(labelled).getBoolean("changed")).isTrue();
      assertThat(labelsOf(s, "cert-a").getMap()).isEqualTo(Map.of("tier", "certified", "region", "eu"));
      s.await(Duration.ofSeconds(5), () -> fleet(s).getJsonArray("gpus").stream().map(g -> (JsonObject) g)
          .anyMatch(g -> g.getString("nodeId").equals("cert-a") && "certified".equals(g.getJsonObject("labels").getString("tier"))));
      var again = s.put("/api/v1/nodes/cert-a/labels", admin, "{\"labels\":{\"region\":\"eu\",\"tier\":\"certified\"}}");
      assertThat(s.json(again).getBoolean("changed")).isFalse();

      // the CPU node has 4 free GPUs and cert-b one: the labelled job still goes to cert-a alone
      String first = submit(s, sleep(certified));
      s.await(Duration.ofSeconds(10), () -> runIds("cert-a").contains(first));
      assertThat(runIds("cert-b")).isEmpty();
      assertThat(s.job(first).getJsonObject("nodeLabels").getMap()).isEqualTo(certified);
      // a job asking for a label and another value fits no node
      var gold = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleep(Map.of("tier", "gold")).encode());
      assertThat(gold.statusCode()).as(gold.body()).isEqualTo(422);
      // cert-a is busy: the next labelled job waits, though other nodes are free (cert-b among them,
      // whose registration claimed tier=certified for itself)
      String second = submit(s, sleep(certified));
      s.await(Duration.ofSeconds(5), () -> fleet(s).getInteger("queued") == 1);
      assertThat(s.job(second).getString("state")).isEqualTo("QUEUED");
      // the operator takes cert-a's labels off: the queued job says why it waits
      assertThat(s.put("/api/v1/nodes/cert-a/labels", admin, "{\"labels\":{}}").statusCode()).isEqualTo(200);
      s.await(Duration.ofSeconds(5), () -> s.job(second).getString("waiting", "").contains("no node carries the labels tier=certified"));
      // and gives them to cert-b: the job runs there
      assertThat(s.put("/api/v1/nodes/cert-b/labels", admin, "{\"labels\":{\"tier\":\"certified\"}}").statusCode()).isEqualTo(200);
      s.await(Duration.ofSeconds(10), () -> runIds("cert-b").contains(second));
      assertThat(runIds("cert-a")).containsExactly(first);
      // a job without labels still runs anywhere: here on the service's own CPU node, to its end
      String plain = submit(s, new JsonObject().put("kind", "sleep").put("gpus", 1).put("gpuClass", "cpu").put("maxSeconds", 60)
          .put("params", new JsonObject().put("ms", 10)));
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(plain).getString("state")));
      s.delete("/api/v1/jobs/" + first, TestService.DEMO_KEY);
      s.delete("/api/v1/jobs/" + second, TestService.DEMO_KEY);
    }
  }

  @Test
  void labelsOutliveARestartAndApplyWhenTheNodeRegistersAgain(@TempDir Path dir) throws Exception {
    try (TestService s = TestService.start(dir)) {
      fakeNode(s, "cert-a", 1);
      assertThat(s.put("/api/v1/nodes/cert-a/labels", TestService.ADMIN_KEY, "{\"labels\":{\"tier\":\"certified\"}}").statusCode())
          .isEqualTo(200);
    }
    runs.clear();
    try (TestService s = TestService.start(dir)) {
      assertThat(labelsOf(s, "cert-a").getMap()).isEqualTo(Map.of("tier", "certified"));
      fakeNode(s, "cert-a", 1);
      fakeNode(s, "other", 1);
      String id = submit(s, sleep(Map.of("tier", "certified")));
      s.await(Duration.ofSeconds(10), () -> runIds("cert-a").contains(id));
      assertThat(runIds("other")).isEmpty();
      s.delete("/api/v1/jobs/" + id, TestService.DEMO_KEY);
    }
  }

  /**
   * A tenant's policy asks every job of it for labels: a job that asks for nothing still goes only to a
   * node carrying them, one that asks for another value is refused, and taking the policy off frees it.
   */
  @Test
  void aTenantsPolicyKeepsEveryJobOfItToTheLabelledNodes(@TempDir Path dir) throws Exception {
    try (TestService s = TestService.start(dir)) {
      fakeNode(s, "cert-a", 1);
      fakeNode(s, "plain-b", 1);
      String admin = TestService.ADMIN_KEY;
      assertThat(s.put("/api/v1/nodes/cert-a/labels", admin, "{\"labels\":{\"tier\":\"certified\"}}").statusCode()).isEqualTo(200);
      String demo = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getString("id");
      var bad = s.patch("/api/v1/tenants/" + demo, admin, "{\"nodeLabels\":{\"tier\":\"certified!\"}}");
      assertThat(bad.statusCode()).as(bad.body()).isEqualTo(422);
      assertThat(s.json(bad).getJsonArray("errors").getJsonObject(0).getString("field")).isEqualTo("nodeLabels.tier");
      var badNew = s.post("/api/v1/tenants", admin, "{\"name\":\"regulated\",\"nodeLabels\":[\"tier\"]}");
      assertThat(badNew.statusCode()).as(badNew.body()).isEqualTo(422);
      assertThat(s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getJsonObject("nodeLabels")).isEmpty();

      // a WebSocket session opened before the policy: its submits follow the policy at once too
      TestService.Ws ws = s.ws(TestService.DEMO_KEY);
      var set = s.patch("/api/v1/tenants/" + demo, admin, "{\"nodeLabels\":{\"tier\":\"certified\"}}");
      assertThat(set.statusCode()).as(set.body()).isEqualTo(200);
      ws.send(new JsonObject().put("type", "submit").put("requestId", "w1").put("job", sleep(Map.of("tier", "gold"))));
      JsonObject refused = ws.nextOfType("error", Duration.ofSeconds(5));
      assertThat(refused.getJsonObject("error").getJsonArray("errors").getJsonObject(0).getString("code")).isEqualTo("tenant-policy");
      ws.close();
      assertThat(s.json(set).getJsonObject("nodeLabels").getMap()).isEqualTo(Map.of("tier", "certified"));
      assertThat(s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getJsonObject("nodeLabels").getMap())
          .isEqualTo(Map.of("tier", "certified"));
      // asks for nothing, yet runs only where the policy's label is, though the CPU node and plain-b are free
      String plain = submit(s, sleep(Map.of()));
      s.await(Duration.ofSeconds(10), () -> runIds("cert-a").contains(plain));
      assertThat(s.job(plain).getJsonObject("nodeLabels").getMap()).isEqualTo(Map.of("tier", "certified"));
      var other = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleep(Map.of("tier", "gold")).encode());
      assertThat(other.statusCode()).as(other.body()).isEqualTo(422);
      assertThat(s.json(other).getJsonArray("errors").getJsonObject(0).getString("code")).isEqualTo("tenant-policy");
      // its own labels come on top of the policy's: no node carries both
      var both = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleep(Map.of("region", "eu")).encode());
      assertThat(both.statusCode()).as(both.body()).isEqualTo(422);
      assertThat(s.json(both).getString("detail")).contains("region=eu, tier=certified");
      // the policy taken off: the tenant's jobs run anywhere again
      var off = s.patch("/api/v1/tenants/" + demo, admin, "{\"nodeLabels\":null}");
      assertThat(s.json(off).getJsonObject("nodeLabels")).isEmpty();
      String free = submit(s, sleep(Map.of()));
      s.await(Duration.ofSeconds(10), () -> runIds("plain-b").contains(free) || "RUNNING".equals(s.job(free).getString("state")));
      assertThat(s.job(free).containsKey("nodeLabels")).isFalse();
      s.delete("/api/v1/jobs/" + plain, TestService.DEMO_KEY);
      s.delete("/api/v1/jobs/" + free, TestService.DEMO_KEY);
    }
  }
}
