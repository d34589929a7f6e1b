package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An operator takes GPUs out of service by hand — one, or a whole node before maintenance: nothing new is
 * placed there, a job running there runs to its end, the quarantine outlives a restart, and lifting it
 * puts the GPU back in service.
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
      assertThat(s.delete("/api/v1/gpus/" + node + "/" + other + "/quarantine", TestService.ADMIN_KEY).statusCode()).isEqualTo(204);
      s.await(Duration.ofSeconds(10), () -> !s.gpu(other).getBoolean("quarantined", false));
      String third = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(10))).getString("id");
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(third).getString("state")));
      assertThat(s.job(third).getJsonArray("devices")).containsExactly(other);
      assertThat(s.gpu(1 - other).getBoolean("quarantined")).isTrue();
    }
  }
}
