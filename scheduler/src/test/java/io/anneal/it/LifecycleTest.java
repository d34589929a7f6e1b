package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A job's life from the outside: the queue bound (backpressure shared by REST and WebSocket), cancel
 * while queued, and {@code maxSeconds} enforced on a running job, each with what it does to the
 * tenant's balance. One CPU device, so a long job holds it and later ones queue.
 */
class LifecycleTest {
  @TempDir Path dir;

  private static String sleepJob(long ms, long maxSeconds) {
    return new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", maxSeconds)
        .put("params", new JsonObject().put("ms", ms)).encode();
  }

  private static String submit(TestService s, String body) {
    HttpResponse<String> r = s.post("/api/v1/jobs", TestService.DEMO_KEY, body);
    assertThat(r.statusCode()).as(r.body()).isEqualTo(202);
    return s.json(r).getString("id");
  }

  private static int jobCount(TestService s) {
    return s.json(s.get("/api/v1/jobs", TestService.DEMO_KEY)).getJsonArray("jobs").size();
  }

  private static JsonObject balance(TestService s) {
    return s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getJsonObject("balance");
  }

  @Test
  void aFullQueueRefusesSubmitsOnRestAndWebSocketWritesNothingAndAcceptsAgainOnceItDrains() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1", "--max-queued-jobs", "2")) {
      String holder = submit(s, sleepJob(60_000, 120));
      s.await(Duration.ofSeconds(20), () -> "RUNNING".equals(s.job(holder).getString("state")));
      submit(s, sleepJob(10, 5));
      submit(s, sleepJob(10, 5));
      JsonObject before = balance(s);
      int jobsBefore = jobCount(s);

      // the third queued job would pass the bound: refused at once, whatever the scheduler last published
      HttpResponse<String> r = s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(10, 5));
      assertThat(r.statusCode()).as(r.body()).isEqualTo(503);
      assertThat(r.headers().firstValue("Retry-After")).hasValue("1");
      assertThat(r.headers().firstValue("content-type")).hasValue("application/problem+json");
      JsonObject problem = s.json(r);
      assertThat(problem.getString("type")).isEqualTo("https://anneal.dev/problems/overloaded");
      assertThat(problem.getString("detail")).contains("limit 2");

      try (TestService.Ws ws = s.ws(TestService.DEMO_KEY)) {
        ws.send(new JsonObject().put("type", "submit").put("requestId", "r1").put("job", new JsonObject(sleepJob(10, 5))));
        JsonObject err = ws.nextOfType("error", Duration.ofSeconds(10));
        assertThat(err.getString("requestId")).isEqualTo("r1");
        assertThat(err.getJsonObject("error").getString("type")).isEqualTo("https://anneal.dev/problems/overloaded");
      }
      assertThat(jobCount(s)).as("a refused submit stores no job").isEqualTo(jobsBefore);
      assertThat(balance(s)).as("and holds no escrow").isEqualTo(before);

      // once the queue drains, submits are accepted again
      s.delete("/api/v1/jobs/" + holder, TestService.DEMO_KEY);
      s.await(Duration.ofSeconds(30), () -> s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(10, 5)).statusCode() == 202);
    }
  }

  @Test
  void cancellingAQueuedJobReleasesItsWholeEscrowAndItNeverRuns() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      String holder = submit(s, sleepJob(60_000, 120));
      s.await(Duration.ofSeconds(20), () -> "RUNNING".equals(s.job(holder).getString("state")));
      JsonObject before = balance(s);
      String waiting = submit(s, sleepJob(10, 600));
      long escrow = s.job(waiting).getLong("escrowUact");
      assertThat(escrow).isPositive();
      assertThat(balance(s).getLong("escrowUact")).isEqualTo(before.getLong("escrowUact") + escrow);

      assertThat(s.delete("/api/v1/jobs/" + waiting, TestService.DEMO_KEY).statusCode()).isBetween(200, 299);
      s.await(Duration.ofSeconds(10), () -> "CANCELLED".equals(s.job(waiting).getString("state")));
      assertThat(balance(s)).as("the whole escrow is back, nothing charged").isEqualTo(before);

      s.delete("/api/v1/jobs/" + holder, TestService.DEMO_KEY);
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(holder).getString("state")));
      JsonObject cancelled = s.job(waiting);
      assertThat(cancelled.getString("state")).as("it never ran").isEqualTo("CANCELLED");
      assertThat(cancelled.containsKey("startedAt")).isFalse();
      assertThat(cancelled.containsKey("receiptId")).isFalse();
    }
  }

  @Test
  void aJobPastItsMaxSecondsFailsWithTimeoutIsBilledForItsRunAndTheDeviceServesTheNextJob() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      long start = s.balanceUact();
      // a product that takes the CPU far longer than the second it is given (a sleep cannot outlast maxSeconds)
      String slow = submit(s, new JsonObject().put("kind", "matmul").put("gpus", 1).put("maxSeconds", 1)
          .put("params", new JsonObject().put("n", 2048)).encode());
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(slow).getString("state")));
      JsonObject j = s.job(slow);
      assertThat(j.getString("outcome")).isEqualTo("FAILED");
      assertThat(j.getString("error")).startsWith("TIMEOUT");
      assertThat(j.getInteger("attempt")).as("a job's own timeout is not retried").isEqualTo(1);
      long charge = j.getLong("chargeUact");
      assertThat(charge).as("the second it ran is billed").isPositive().isLessThanOrEqualTo(j.getLong("escrowUact"));
      assertThat(j.getLong("endedAt") - j.getLong("startedAt")).as("stopped near maxSeconds").isBetween(900L, 10_000L);
      assertThat(s.balanceUact()).isEqualTo(start - charge);

      String next = submit(s, sleepJob(10, 5));
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(next).getString("state")));
      assertThat(s.job(next).getString("outcome")).isEqualTo("SUCCEEDED");
    }
  }
}
