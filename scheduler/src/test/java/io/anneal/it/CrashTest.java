package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.ledger.TestDatabases;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A service killed at once (SIGKILL: no shutdown, no drain) loses no job it answered 202 for, and
 * charges nothing twice. The service runs in a process of its own, as {@code ./run} starts it; it is
 * started, given jobs and killed three times over on the same store — right after its last answer,
 * then while jobs run, finish and settle, at a random moment. Started once more, every accepted job
 * is there and settles, each charged once, and the ledger's audit is clean. On H2 and on PostgreSQL,
 * through each ledger client.
 */
class CrashTest {
  @TempDir Path dir;

  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final int CYCLES = 3;
  private static final int JOBS_PER_CYCLE = 30;

  @Test
  void onH2() throws Exception {
    crashAndRecover();
  }

  @Test
  void onH2ThroughTheVertxLedgerClient() throws Exception {
    crashAndRecover("--ledger-client", "vertx");
  }

  @Test
  void onPostgres() throws Exception {
    TestDatabases.requirePostgres();
    crashAndRecover("--db-url", TestDatabases.localPostgresUrl() + "&currentSchema=crash_" + Long.toHexString(System.nanoTime()));
  }

  @Test
  void onPostgresThroughTheVertxLedgerClient() throws Exception {
    TestDatabases.requirePostgres();
    crashAndRecover("--ledger-client", "vertx", "--db-url",
        TestDatabases.localPostgresUrl() + "&currentSchema=crash_" + Long.toHexString(System.nanoTime()));
  }

  private void crashAndRecover(String... store) throws Exception {
    // epochs of 2 s: kills also land while epochs close, and the audit rebuilds every closed one
    List<String> args = new ArrayList<>(List.of(store));
    args.addAll(List.of("--epoch-seconds", "2"));
    String[] storeArgs = args.toArray(String[]::new);
    long seed = System.nanoTime();
    Random random = new Random(seed);
    Path data = dir.resolve("data");
    List<String> accepted = new ArrayList<>();
    long actBefore = -1;
    for (int cycle = 0; cycle < CYCLES; cycle++) {
      TestService.Spawned spawned = TestService.spawn(data, dir.resolve("service-" + cycle + ".log"), storeArgs);
      Process service = spawned.process();
      try {
        String base = spawned.base();
        if (cycle == 0) {
          JsonObject b = new JsonObject(send(HttpRequest.newBuilder(URI.create(base + "/api/v1/me")), 200)).getJsonObject("balance");
          actBefore = b.getLong("uact") + b.getLong("escrowUact");
        }
        // jobs of 20 ms and of 600 ms on 4 CPU devices: at the kill some have settled, some run, some wait
        for (int i = 0; i < JOBS_PER_CYCLE; i++) {
          String job = new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 60)
              .put("params", new JsonObject().put("ms", i % 3 == 0 ? 600 : 20)).encode();
          String body = send(HttpRequest.newBuilder(URI.create(base + "/api/v1/jobs"))
              .POST(HttpRequest.BodyPublishers.ofString(job)), 202);
          accepted.add(new JsonObject(body).getString("id"));
        }
        if (cycle > 0) Thread.sleep(random.nextInt(1_500)); // the first is killed right after its last answer
      } finally {
        service.destroyForcibly();
        service.waitFor();
      }
    }

    try (TestService s = TestService.start(data, storeArgs)) {
      String seedNote = "seed " + seed + ", store " + String.join(" ", storeArgs);
      for (String id : accepted) {
        var r = s.get("/api/v1/jobs/" + id, TestService.DEMO_KEY);
        assertThat(r.statusCode()).as("job %s, answered 202 before a kill (%s)", id, seedNote).isEqualTo(200);
      }
      s.await(Duration.ofSeconds(90), () -> accepted.stream().allMatch(id -> "SETTLED".equals(s.job(id).getString("state"))));
      long charged = 0;
      for (String id : accepted) {
        JsonObject job = s.job(id);
        assertThat(job.getString("outcome")).as("%s (%s)", job.encode(), seedNote).isEqualTo("SUCCEEDED");
        JsonObject receipt = s.json(s.get("/api/v1/receipts/" + id, TestService.DEMO_KEY));
        assertThat(receipt.getBoolean("settled")).as(receipt.encode()).isTrue();
        assertThat(receipt.getJsonObject("settlement").getLong("chargeUact")).isEqualTo(job.getLong("chargeUact"));
        charged += job.getLong("chargeUact");
      }
      JsonObject balance = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getJsonObject("balance");
      assertThat(balance.getLong("escrowUact")).as(seedNote).isZero();
      assertThat(balance.getLong("uact")).as("each job charged once (%s)", seedNote).isEqualTo(actBefore - charged);
      JsonObject audit = s.json(s.get("/api/v1/ledger/audit", TestService.ADMIN_KEY));
      assertThat(audit.getBoolean("clean")).as("%s (%s)", audit.encode(), seedNote).isTrue();
      assertThat(audit.getJsonObject("checked").getString("epochs")).as("epochs closed across the kills")
          .doesNotStartWith("0 closed epochs");
      s.service.database().dropSchema(); // PostgreSQL: the test's own schema
    }
  }

  private static String send(HttpRequest.Builder request, int expected) throws Exception {
    HttpResponse<String> r = HTTP.send(request.header("Authorization", "Bearer " + TestService.DEMO_KEY).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(expected);
    return r.body();
  }
}
