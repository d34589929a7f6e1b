package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * retention.finishedJobDays: a finished job leaves the store that long after it ended (here ~2.6 s); its
 * signed receipts, settlement and epoch proof stay in the ledger and are still served to its tenant
 * only; a job that has not ended stays. Ended webhook deliveries leave the delivery log as well.
 */
class RetentionTest {
  @TempDir Path dir;

  private static String sleepJob(long ms) {
    return new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 120)
        .put("params", new JsonObject().put("ms", ms)).encode();
  }

  @Test
  void aFinishedJobIsRemovedAfterItsRetentionAndItsReceiptsStay() throws Exception {
    try (TestService s = TestService.start(dir, "--retention-finished-job-days", "0.00003", "--cpu-devices", "2")) {
      JsonObject other = s.json(s.post("/api/v1/tenants", TestService.ADMIN_KEY,
          "{\"name\":\"other\",\"apiKey\":\"other-key-0123456789\"}"));
      assertThat(other.getString("id")).isNotNull();
      com.sun.net.httpserver.HttpServer receiver = com.sun.net.httpserver.HttpServer.create(
          new java.net.InetSocketAddress("127.0.0.1", 0), 0);
      receiver.createContext("/", ex -> {
        ex.getRequestBody().readAllBytes();
        ex.sendResponseHeaders(200, -1);
        ex.close();
      });
      receiver.start();
      String hook = s.json(s.post("/api/v1/webhooks", TestService.DEMO_KEY, "{\"url\":\"http://127.0.0.1:"
          + receiver.getAddress().getPort() + "/h\",\"events\":[\"job.settled\"]}")).getString("id");
      String log = "/api/v1/webhooks/" + hook + "/deliveries";
      String done = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(20))).getString("id");
      String running = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(60_000))).getString("id");
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(done).getString("state")));
      JsonObject before = s.json(s.get("/api/v1/receipts/" + done, TestService.DEMO_KEY));
      assertThat(before.getBoolean("settled")).isTrue();
      s.await(Duration.ofSeconds(10), () -> s.json(s.get(log, TestService.DEMO_KEY)).getJsonArray("deliveries").stream()
          .anyMatch(d -> "DELIVERED".equals(((JsonObject) d).getString("state"))));

      s.await(Duration.ofSeconds(20), () -> s.get("/api/v1/jobs/" + done, TestService.DEMO_KEY).statusCode() == 404);
      var gone = s.get("/api/v1/jobs/" + done, TestService.DEMO_KEY);
      assertThat(s.json(gone).getString("detail")).contains("removed", "/api/v1/receipts/" + done);
      assertThat(s.json(s.get("/api/v1/jobs", TestService.DEMO_KEY)).getJsonArray("jobs").stream()
          .map(j -> ((JsonObject) j).getString("id"))).doesNotContain(done).contains(running);

      // the receipts stay, for the job's tenant only
      JsonObject after = s.json(s.get("/api/v1/receipts/" + done, TestService.DEMO_KEY));
      assertThat(after.getString("state")).isEqualTo("SETTLED");
      assertThat(after.getJsonArray("runs")).isEqualTo(before.getJsonArray("runs"));
      assertThat(after.getJsonObject("receipt")).isEqualTo(before.getJsonObject("receipt"));
      assertThat(s.get("/api/v1/receipts/" + done, "other-key-0123456789").statusCode()).isEqualTo(404);
      assertThat(s.get("/api/v1/receipts/j_never_was", TestService.DEMO_KEY).statusCode()).isEqualTo(404);

      // a job that has not ended stays, however long it runs
      assertThat(s.job(running).getString("state")).isEqualTo("RUNNING");
      assertThat(s.get("/metrics", null).body()).containsPattern("anneal_store_jobs_removed_total [1-9]");
      // the delivery that told of it leaves the log too
      s.await(Duration.ofSeconds(20), () -> s.json(s.get(log, TestService.DEMO_KEY)).getJsonArray("deliveries").isEmpty());
      s.delete("/api/v1/jobs/" + running, TestService.DEMO_KEY);
      receiver.stop(0);
    }
  }
}
