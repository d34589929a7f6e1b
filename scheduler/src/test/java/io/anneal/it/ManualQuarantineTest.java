package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An operator takes GPUs out of service by hand — one, or a whole node before maintenance: nothing new is
 * placed there, a job running there runs to its end, a job submitted while no GPU that could run it is in
 * service waits for one (and is told so), the quarantine outlives a restart, and lifting it puts the GPU
 * back in service.
 */
class ManualQuarantineTest {
  @TempDir Path dir;

  private static String sleepJob(long ms) {
    return new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 60)
        .put("params", new JsonObject().put("ms", ms)).encode();
  }


  @Test
  void anOperatorTakesGpusOutOfServiceRunningJobsFinishAndNothingNewIsPlacedThereUntilLifted() throws Exception {
    String node;
    int other;
    try (TestService s = TestService.start(dir, "--cpu-devices", "2")) {
      node = s.gpu(0).getString("nodeId");
      String first = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(1_500))).getString("id");
      s.await(Duration.ofSeconds(10), () -> "RUNNING".equals(s.job(first).getString("state")));
      int busy = s.job(first).getJsonArray("devices").getInteger(0);
      other = 1 - busy;

      // refused, nothing stored: no admin key, a tenant's key, unknown node or device, a bad reason
      String one = "/api/v1/gpus/" + node + "/" + other + "/quarantine";
      assertThat(s.put(one, null, "{}").statusCode()).isEqualTo(401);
      assertThat(s.put(one, TestService.DEMO_KEY, "{}").statusCode()).isEqualTo(403);
      assertThat(s.put("/api/v1/gpus/nope/quarantine", TestService.ADMIN_KEY, "{}").statusCode()).isEqualTo(404);
      assertThat(s.put("/api/v1/gpus/" + node + "/7/quarantine", TestService.ADMIN_KEY, "{}").statusCode()).isEqualTo(404);
      assertThat(s.put(one, TestService.ADMIN_KEY, "{\"reason\":\"\"}").statusCode()).isEqualTo(422);
      assertThat(s.put(one, TestService.ADMIN_KEY, "{\"why\":\"x\"}").statusCode()).isEqualTo(422);
      assertThat(s.gpu(other).getBoolean("quarantined", false)).isFalse();

      // the free GPU out of service: the next job waits for the busy one, and runs there once it is free
      var taken = s.put(one, TestService.ADMIN_KEY, "{\"reason\":\"fan noise\"}");
      assertThat(taken.statusCode()).isEqualTo(201);
      s.await(Duration.ofSeconds(5), () -> s.gpu(other).getBoolean("quarantined", false));
      assertThat(s.gpu(other).getString("quarantineReason")).isEqualTo("by an operator: fan noise");
      String second = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(1_500))).getString("id");
      assertThat(s.job(second).getString("state")).isEqualTo("QUEUED");
      s.await(Duration.ofSeconds(20), () -> "RUNNING".equals(s.job(second).getString("state")));
      assertThat(s.job(first).getString("outcome")).isEqualTo("SUCCEEDED");
      assertThat(s.job(second).getJsonArray("devices")).containsExactly(busy);

      // the whole node cordoned while the second job runs: it runs to its end
      String cordon = "/api/v1/gpus/" + node + "/quarantine";
      var cordoned = s.put(cordon, TestService.ADMIN_KEY, "{\"reason\":\"firmware update\"}");
      assertThat(cordoned.statusCode()).isEqualTo(201);
      assertThat(s.json(cordoned).getJsonArray("quarantined")).hasSize(2);
      assertThat(s.put(cordon, TestService.ADMIN_KEY, "{}").statusCode()).as("already").isEqualTo(200);
      s.await(Duration.ofSeconds(5), () -> s.gpu(busy).getBoolean("quarantined", false));
      assertThat(s.gpu(other).getString("quarantineReason")).as("the first reason kept").isEqualTo("by an operator: fan noise");
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(second).getString("state")));
      assertThat(s.job(second).getString("outcome")).isEqualTo("SUCCEEDED");
      assertThat(s.json(s.get("/api/v1/gpus", null)).getInteger("free")).isZero();
    }
    // stored: after a restart both stay out of service; one lifted serves jobs again
    try (TestService s = TestService.start(dir, "--cpu-devices", "2")) {
      s.await(Duration.ofSeconds(10), () -> s.gpu(0).getBoolean("quarantined", false) && s.gpu(1).getBoolean("quarantined", false));
      // the whole node out of service: a job it could run is taken and waits (it is told so), as the jobs
      // queued before the cordon do; one larger than the node is refused, saying what is in service
      var accepted = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(10));
      assertThat(accepted.statusCode()).isEqualTo(202);
      assertThat(s.json(accepted).getString("waiting")).contains("in service");
      String third = s.json(accepted).getString("id");
      assertThat(s.job(third).getString("state")).isEqualTo("QUEUED");
      assertThat(s.job(third).getString("waiting")).as("the job's view says why it waits").contains("in service");
      try (TestService.Ws ws = s.ws(TestService.DEMO_KEY)) {
        ws.send(new JsonObject().put("type", "submit").put("requestId", "w1").put("job", new JsonObject(sleepJob(10))));
        JsonObject ack = ws.nextOfType("accepted", Duration.ofSeconds(5));
        assertThat(ack.getString("waiting")).contains("in service");
        s.delete("/api/v1/jobs/" + ack.getString("jobId"), TestService.DEMO_KEY);
      }
      var tooLarge = s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject(sleepJob(10)).put("gpus", 3).encode());
      assertThat(tooLarge.statusCode()).isEqualTo(422);
      assertThat(s.json(tooLarge).getString("detail")).contains("the largest node has 2 GPU(s) (0 in service)");
      assertThat(s.delete("/api/v1/gpus/" + node + "/" + other + "/quarantine", TestService.ADMIN_KEY).statusCode()).isEqualTo(204);
      s.await(Duration.ofSeconds(10), () -> !s.gpu(other).getBoolean("quarantined", false));
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(third).getString("state")));
      assertThat(s.job(third).getJsonArray("devices")).containsExactly(other);
      assertThat(s.job(third).containsKey("waiting")).isFalse();
      var inService = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(10));
      assertThat(s.json(inService).containsKey("waiting")).as("a GPU is in service again").isFalse();
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(s.json(inService).getString("id")).getString("state")));
      assertThat(s.gpu(1 - other).getBoolean("quarantined")).isTrue();
    }
  }
}
