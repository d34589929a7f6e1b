package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * limits.maxQueuedJobsPerTenant: a tenant with that many jobs queued is refused (429 tenant-queue-full,
 * nothing written) on REST and WebSocket, however fast it submits; other tenants are not; once one of its
 * jobs leaves the queue it may submit again.
 */
class TenantQueueLimitTest {
  @TempDir Path dir;

  private static String sleepJob(long ms) {
    return new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 120)
        .put("params", new JsonObject().put("ms", ms)).encode();
  }

  @Test
  void aTenantAtItsQueueLimitIsRefusedUntilAJobLeavesTheQueueAndOtherTenantsAreNot() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1", "--max-queued-jobs-per-tenant", "2",
        "--tick-seconds", "1", "--min-epoch-ticks", "1")) {
      JsonObject other = s.json(s.post("/api/v1/tenants", TestService.ADMIN_KEY,
          "{\"name\":\"other\",\"apiKey\":\"other-key-0123456789\"}"));
      String deposit = "/api/v1/tenants/" + other.getString("id") + "/deposits";
      assertThat(s.post(deposit, TestService.ADMIN_KEY, "{\"akt\":\"50\",\"reference\":\"q-1\"}").statusCode()).isEqualTo(202);
      s.await(Duration.ofSeconds(20), () -> "EXECUTED".equals(s.json(s.get(deposit + "/q-1", TestService.ADMIN_KEY))
          .getString("state")));

      // the one GPU busy; then the tenant's submits back to back, none waiting for the scheduler's count
      String running = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(120_000))).getString("id");
      s.await(Duration.ofSeconds(10), () -> "RUNNING".equals(s.job(running).getString("state")));
      var first = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(100));
      var second = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(100));
      var third = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(100));
      assertThat(first.statusCode()).isEqualTo(202);
      assertThat(second.statusCode()).isEqualTo(202);
      assertProblem(third);
      assertThat(third.headers().firstValue("Retry-After")).contains("5");
      assertThat(jobsOf(s, TestService.DEMO_KEY)).as("the refused submit wrote nothing").isEqualTo(3);
      long escrowed = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getJsonObject("balance").getLong("escrowUact");

      try (TestService.Ws ws = s.ws(TestService.DEMO_KEY)) {
        ws.nextOfType("authenticated", Duration.ofSeconds(5));
        ws.send(new JsonObject().put("type", "submit").put("requestId", "w1").put("job", new JsonObject(sleepJob(100))));
        JsonObject e = ws.nextOfType("error", Duration.ofSeconds(5));
        assertThat(e.getString("requestId")).isEqualTo("w1");
        assertThat(e.getJsonObject("error").getString("type")).endsWith("/tenant-queue-full");
      }
      assertThat(jobsOf(s, TestService.DEMO_KEY)).isEqualTo(3);
      assertThat(s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getJsonObject("balance").getLong("escrowUact"))
          .as("nothing held for refused submits").isEqualTo(escrowed);

      // another tenant is not held back by it
      assertThat(s.post("/api/v1/jobs", "other-key-0123456789", sleepJob(100)).statusCode()).isEqualTo(202);

      // a tenant's own bound (a policy): the other tenant may have 1 queued, then it is refused; bad values change nothing
      String otherId = other.getString("id");
      assertThat(s.patch("/api/v1/tenants/" + otherId, TestService.ADMIN_KEY, "{\"maxQueuedJobs\":0}").statusCode()).isEqualTo(422);
      assertThat(s.patch("/api/v1/tenants/" + otherId, TestService.ADMIN_KEY, "{\"maxQueuedJobs\":1.5}").statusCode()).isEqualTo(422);
      assertThat(s.json(s.get("/api/v1/me", "other-key-0123456789")).getInteger("maxQueuedJobs")).isEqualTo(2);
      var patched = s.patch("/api/v1/tenants/" + otherId, TestService.ADMIN_KEY, "{\"maxQueuedJobs\":1}");
      assertThat(patched.statusCode()).isEqualTo(200);
      assertThat(s.json(patched).getInteger("maxQueuedJobs")).isEqualTo(1);
      assertThat(s.json(s.get("/api/v1/me", "other-key-0123456789")).getInteger("maxQueuedJobs")).isEqualTo(1);
      var own = s.post("/api/v1/jobs", "other-key-0123456789", sleepJob(100));
      assertThat(own.statusCode()).as(own.body()).isEqualTo(429);
      assertThat(s.json(own).getString("detail")).contains("limit 1 for this tenant");
      // and back to the service's bound
      assertThat(s.patch("/api/v1/tenants/" + otherId, TestService.ADMIN_KEY, "{\"maxQueuedJobs\":null}").statusCode()).isEqualTo(200);
      s.await(Duration.ofSeconds(10), () -> s.post("/api/v1/jobs", "other-key-0123456789", sleepJob(100)).statusCode() == 202);

      // one of the tenant's queued jobs cancelled: it may submit one more, once the scheduler has counted
      assertThat(s.delete("/api/v1/jobs/" + s.json(first).getString("id"), TestService.DEMO_KEY).statusCode()).isLessThan(300);
      s.await(Duration.ofSeconds(10), () -> {
        var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(100));
        if (r.statusCode() == 202) return true;
        assertProblem(r); // until then refused as before, nothing else
        return false;
      });
      assertProblem(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(100)));
      assertThat(jobsOf(s, TestService.DEMO_KEY)).isEqualTo(4);
    }
  }

  private static void assertProblem(HttpResponse<String> r) {
    assertThat(r.statusCode()).as(r.body()).isEqualTo(429);
    JsonObject p = new JsonObject(r.body());
    assertThat(p.getString("type")).endsWith("/tenant-queue-full");
    assertThat(p.getString("detail")).contains("limit 2 per tenant");
  }

  private static int jobsOf(TestService s, String key) {
    return s.json(s.get("/api/v1/jobs", key)).getJsonArray("jobs").size();
  }
}
