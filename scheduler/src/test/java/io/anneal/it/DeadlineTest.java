package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A start-by deadline: a job that cannot start in time fails with its escrow returned; one that can, runs. */
class DeadlineTest {
  @TempDir Path dir;

  private static String sleep(long ms, Long deadlineSeconds) {
    JsonObject j = new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 60)
        .put("params", new JsonObject().put("ms", ms));
    if (deadlineSeconds != null) j.put("deadlineSeconds", deadlineSeconds);
    return j.encode();
  }

  @Test
  void aJobStillQueuedAtItsDeadlineFailsAndGetsItsEscrowBack() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      String blocker = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleep(3000, null))).getString("id");
      s.await(Duration.ofSeconds(10), () -> s.job(blocker).getString("state").equals("RUNNING"));
      long before = s.balanceUact();
      var late = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleep(10, 1L));
      assertThat(late.statusCode()).isEqualTo(202);
      String lateId = s.json(late).getString("id");
      assertThat(s.job(lateId).getLong("deadlineSeconds")).isEqualTo(1L);
      String patient = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleep(10, 60L))).getString("id");

      s.await(Duration.ofSeconds(10), () -> s.job(lateId).getString("state").equals("FAILED"));
      JsonObject failed = s.job(lateId);
      assertThat(failed.getString("error")).startsWith("deadline");
      assertThat(failed.containsKey("startedAt")).isFalse();
      s.await(Duration.ofSeconds(20), () -> s.job(patient).getString("state").equals("SETTLED"));
      assertThat(s.job(patient).getString("outcome")).isEqualTo("SUCCEEDED");
      s.await(Duration.ofSeconds(20), () -> s.job(blocker).getString("state").equals("SETTLED"));
      // the expired job's escrow came back in full: only the two jobs that ran were charged
      long charged = s.job(patient).getLong("chargeUact") + s.job(blocker).getLong("chargeUact");
      long blockerEscrow = s.job(blocker).getLong("escrowUact");
      assertThat(s.balanceUact()).isEqualTo(before + blockerEscrow - charged);

      var bad = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleep(10, 0L));
      assertThat(bad.statusCode()).isEqualTo(422);
      assertThat(bad.body()).contains("deadlineSeconds");
    }
  }
}
