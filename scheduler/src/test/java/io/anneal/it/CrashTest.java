package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A service killed at once (SIGKILL: no shutdown, no drain) on its embedded store loses no job it
 * answered 202 for, and charges nothing twice: started again on the same data dir, every accepted job
 * is there and settles, and the ledger's audit is clean. The service runs in a process of its own, as
 * {@code ./run} starts it, and is killed right after its last answer.
 */
class CrashTest {
  @TempDir Path dir;

  private static final HttpClient HTTP = HttpClient.newHttpClient();

  @Test
  void aKilledServiceLosesNoAcceptedJobAndChargesNothingTwice() throws Exception {
    int port;
    try (ServerSocket free = new ServerSocket(0)) {
      port = free.getLocalPort();
    }
    Path log = dir.resolve("service.log");
    ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), "io.anneal.Main", "--http-port", String.valueOf(port),
        "--data-dir", dir.resolve("data").toString(), "--gpu-backend", "cpu")
        .redirectErrorStream(true).redirectOutput(log.toFile());
    pb.environment().put("ANNEAL_DEMO_TENANT", "demo:" + TestService.DEMO_KEY + ":100");
    pb.environment().put("ANNEAL_ADMIN_KEY", TestService.ADMIN_KEY);
    Process service = pb.start();
    List<String> accepted = new ArrayList<>();
    long actBefore;
    try {
      String base = "http://127.0.0.1:" + port;
      long until = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (status(base + "/ready") != 200) {
        assertThat(service.isAlive()).as("the service process ended: %s", Files.readString(log)).isTrue();
        assertThat(System.nanoTime()).as("ready within 60 s: %s", Files.readString(log)).isLessThan(until);
        Thread.sleep(100);
      }
      JsonObject me = new JsonObject(send(HttpRequest.newBuilder(URI.create(base + "/api/v1/me")), 200));
      actBefore = me.getJsonObject("balance").getLong("uact") + me.getJsonObject("balance").getLong("escrowUact");
      // settled, running and queued jobs at the kill: 4 CPU devices, jobs of 20 ms and of 1 s
      for (int i = 0; i < 30; i++) {
        String job = new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 60)
            .put("params", new JsonObject().put("ms", i % 3 == 0 ? 1_000 : 20)).encode();
        String body = send(HttpRequest.newBuilder(URI.create(base + "/api/v1/jobs"))
            .POST(HttpRequest.BodyPublishers.ofString(job)), 202);
        accepted.add(new JsonObject(body).getString("id"));
      }
    } finally {
      service.destroyForcibly();
      service.waitFor();
    }

    try (TestService s = TestService.start(dir.resolve("data"))) {
      for (String id : accepted) {
        var r = s.get("/api/v1/jobs/" + id, TestService.DEMO_KEY);
        assertThat(r.statusCode()).as("job %s, answered 202 before the kill", id).isEqualTo(200);
      }
      s.await(Duration.ofSeconds(60), () -> accepted.stream().allMatch(id -> "SETTLED".equals(s.job(id).getString("state"))));
      long charged = 0;
      for (String id : accepted) {
        JsonObject job = s.job(id);
        assertThat(job.getString("outcome")).as(job.encode()).isEqualTo("SUCCEEDED");
        charged += job.getLong("chargeUact");
      }
      JsonObject me = s.json(s.get("/api/v1/me", TestService.DEMO_KEY));
      assertThat(me.getJsonObject("balance").getLong("escrowUact")).isZero();
      assertThat(me.getJsonObject("balance").getLong("uact")).as("each job charged once").isEqualTo(actBefore - charged);
      JsonObject audit = s.json(s.get("/api/v1/ledger/audit", TestService.ADMIN_KEY));
      assertThat(audit.getBoolean("clean")).as(audit.encode()).isTrue();
    }
  }

  private static int status(String url) {
    try {
      return HTTP.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.discarding()).statusCode();
    } catch (java.io.IOException e) {
      return -1; // not listening yet
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return -1;
    }
  }

  private static String send(HttpRequest.Builder request, int expected) throws Exception {
    HttpResponse<String> r = HTTP.send(request.header("Authorization", "Bearer " + TestService.DEMO_KEY).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(expected);
    return r.body();
  }
}
