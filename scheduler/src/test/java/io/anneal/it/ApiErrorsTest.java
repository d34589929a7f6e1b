package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad input gets a problem with a stable type, and nothing is written. */
class ApiErrorsTest {
  @TempDir static Path dir;
  static TestService s;

  @BeforeAll
  static void start() throws Exception {
    // one-second ticks and a mint epoch every tick, so that queued deposits convert within a second
    s = TestService.start(dir, "--tick-seconds", "1", "--min-epoch-ticks", "1");
  }

  @AfterAll
  static void stop() {
    s.close();
  }

  private static void assertProblem(HttpResponse<String> r, int status, String type) {
    assertThat(r.statusCode()).isEqualTo(status);
    assertThat(r.headers().firstValue("content-type")).hasValue("application/problem+json");
    JsonObject p = new JsonObject(r.body());
    assertThat(p.getString("type")).isEqualTo("https://anneal.dev/problems/" + type);
    assertThat(p.getInteger("status")).isEqualTo(status);
    assertThat(p.getString("title")).isNotBlank();
  }

  private static int jobCount() {
    return s.json(s.get("/api/v1/jobs", TestService.DEMO_KEY)).getJsonArray("jobs").size();
  }

  @Test
  void badRequestsAreRefusedWithStableTypesAndWriteNothing() throws Exception {
    // the other tests of this class share the service: let their jobs settle before measuring
    s.await(java.time.Duration.ofSeconds(30), () -> s.json(s.get("/api/v1/jobs", TestService.DEMO_KEY)).getJsonArray("jobs")
        .stream().map(j -> ((JsonObject) j).getString("state"))
        .allMatch(st -> st.equals("SETTLED") || st.equals("CANCELLED") || st.equals("FAILED")));
    int jobs = jobCount();
    long balance = s.balanceUact();
    String ok = "{\"kind\":\"sleep\",\"gpus\":1,\"params\":{\"ms\":1}}";
    assertProblem(s.post("/api/v1/jobs", TestService.DEMO_KEY, "{\"kind\": \"sleep\","), 400, "malformed-json");
    assertProblem(s.post("/api/v1/jobs", TestService.DEMO_KEY, "[1,2]"), 400, "malformed-json");
    assertProblem(s.post("/api/v1/jobs", TestService.DEMO_KEY, ""), 400, "malformed-json");
    assertProblem(s.post("/api/v1/jobs", TestService.DEMO_KEY, "{\"kind\":\"sleep\",\"gpus\":1,\"colour\":\"red\"}"), 422,
        "unknown-field");
    assertProblem(s.post("/api/v1/jobs", TestService.DEMO_KEY, "{\"kind\":\"sleep\",\"params\":{\"ms\":1,\"x\":2}}"), 422,
        "unknown-field");
    assertProblem(s.post("/api/v1/jobs", null, ok), 401, "unauthorized");
    assertProblem(s.post("/api/v1/jobs", "not-a-key-of-anyone", ok), 401, "unauthorized");
    assertProblem(s.post("/api/v1/jobs", TestService.DEMO_KEY, "{\"kind\":\"sleep\",\"gpus\":5}"), 422, "unsatisfiable");
    assertProblem(s.post("/api/v1/jobs", TestService.DEMO_KEY, "{\"kind\":\"sleep\",\"gpus\":1,\"gpuClass\":\"H100\"}"), 422,
        "unsatisfiable");
    // within the job spec's bounds, but beyond what the CPU backend (the only one here) runs
    var tooLarge = s.post("/api/v1/jobs", TestService.DEMO_KEY, "{\"kind\":\"matmul\",\"gpus\":1,\"params\":{\"n\":4096}}");
    assertProblem(tooLarge, 422, "unsatisfiable");
    assertThat(s.json(tooLarge).getString("detail")).contains("params.n is 4096").contains("2048");
    assertProblem(s.post("/api/v1/jobs", TestService.DEMO_KEY, "{\"kind\":\"bake\",\"gpus\":1}"), 422, "invalid-job");
    assertProblem(s.post("/api/v1/jobs", TestService.DEMO_KEY, "{\"kind\":\"sleep\",\"gpus\":0}"), 422, "invalid-job");
    assertProblem(s.post("/api/v1/jobs", TestService.DEMO_KEY, "{\"kind\":\"sleep\",\"gpus\":1.5}"), 422, "invalid-job");
    assertProblem(s.post("/api/v1/jobs", TestService.DEMO_KEY, "{\"kind\":\"sleep\",\"maxSeconds\":86400000}"), 422,
        "invalid-job");
    assertProblem(s.get("/api/v1/jobs/j_nope", TestService.DEMO_KEY), 404, "not-found");
    assertProblem(s.post("/api/v1/tenants", TestService.DEMO_KEY, "{\"name\":\"x\"}"), 403, "forbidden");
    assertProblem(s.post("/api/v1/tenants/t_x/deposits", TestService.ADMIN_KEY, "{\"akt\":\"-5\"}"), 422, "invalid-deposit");
    assertThat(jobCount()).isEqualTo(jobs);
    assertThat(s.balanceUact()).isEqualTo(balance);
  }

  @Test
  void aJobThatCostsMoreThanTheBalanceIsRefusedWithoutEscrow() throws Exception {
    var created = s.post("/api/v1/tenants", TestService.ADMIN_KEY, "{\"name\":\"poor\",\"apiKey\":\"poor-key-0123456789\"}");
    assertThat(created.statusCode()).isEqualTo(201);
    String tenantId = s.json(created).getString("id");
    String job = "{\"kind\":\"sleep\",\"gpus\":1,\"maxSeconds\":3600,\"params\":{\"ms\":1}}";
    assertProblem(s.post("/api/v1/jobs", "poor-key-0123456789", job), 402, "insufficient-funds");
    assertThat(s.json(s.get("/api/v1/jobs", "poor-key-0123456789")).getJsonArray("jobs")).isEmpty();
    assertThat(s.json(s.get("/api/v1/tenants/" + tenantId + "/balance", "poor-key-0123456789")).getLong("escrowUact")).isZero();
    // below the 10 ACT minimum mint: refused by the BME, nothing recorded
    assertProblem(s.post("/api/v1/tenants/" + tenantId + "/deposits", TestService.ADMIN_KEY, "{\"akt\":\"1\"}"), 422,
        "bme-refused");
    var deposit = s.post("/api/v1/tenants/" + tenantId + "/deposits", TestService.ADMIN_KEY,
        "{\"akt\":\"50\",\"reference\":\"chain-tx-1\"}");
    // queued: the ACT arrives at the next mint epoch (bme-spec 14)
    assertThat(deposit.statusCode()).isEqualTo(202);
    assertThat(s.json(deposit).getString("state")).isEqualTo("PENDING");
    // 50 AKT at 0.4823 = 24.115 ACT gross, 0.25 % mint spread kept by the engine
    assertThat(s.json(deposit).getLong("estimatedCreditUact")).isEqualTo(24_115_000L - 60_287L);
    String status = "/api/v1/tenants/" + tenantId + "/deposits/chain-tx-1";
    s.await(java.time.Duration.ofSeconds(10), () -> "EXECUTED".equals(s.json(s.get(status, TestService.ADMIN_KEY))
        .getString("state")));
    JsonObject done = s.json(s.get(status, "poor-key-0123456789"));
    assertThat(done.getLong("mintedUact")).isEqualTo(24_115_000L);
    assertThat(done.getLong("creditedUact")).isEqualTo(24_115_000L - 60_287L);
    assertThat(s.get(status, TestService.DEMO_KEY).statusCode()).isEqualTo(403);
    assertThat(s.get(status, null).statusCode()).isEqualTo(401);
    assertThat(s.get("/api/v1/tenants/" + tenantId + "/balance", TestService.DEMO_KEY).statusCode()).isEqualTo(403);
    assertThat(s.get("/api/v1/tenants/" + tenantId + "/balance", null).statusCode()).isEqualTo(401);
    assertThat(s.get("/api/v1/tenants/" + tenantId + "/deposits/nope", TestService.ADMIN_KEY).statusCode()).isEqualTo(404);
    var again = s.post("/api/v1/tenants/" + tenantId + "/deposits", TestService.ADMIN_KEY,
        "{\"akt\":\"50\",\"reference\":\"chain-tx-1\"}");
    assertThat(again.statusCode()).isEqualTo(200);
    assertThat(s.json(again).getString("state")).isEqualTo("EXECUTED");
    assertThat(s.json(s.get("/api/v1/tenants/" + tenantId + "/balance", TestService.ADMIN_KEY)).getLong("uact"))
        .isEqualTo(24_115_000L - 60_287L);
    assertThat(s.post("/api/v1/jobs", "poor-key-0123456789", job).statusCode()).isEqualTo(202);
  }

  @Test
  void webSocketErrorsAreMessagesWithTheSameTypes() throws Exception {
    int jobs = jobCount();
    try (TestService.Ws anon = s.ws(null)) {
      anon.send(new JsonObject().put("type", "submit").put("requestId", "r0").put("job", new JsonObject().put("kind", "sleep")));
      JsonObject e = anon.nextOfType("error", Duration.ofSeconds(5));
      assertThat(e.getString("requestId")).isEqualTo("r0");
      assertThat(e.getJsonObject("error").getString("type")).endsWith("/unauthorized");
      anon.send(new JsonObject().put("type", "auth").put("apiKey", "wrong"));
      assertThat(anon.nextOfType("error", Duration.ofSeconds(5)).getJsonObject("error").getString("type")).endsWith("/unauthorized");
      anon.send(new JsonObject().put("type", "auth").put("apiKey", TestService.DEMO_KEY));
      anon.nextOfType("authenticated", Duration.ofSeconds(5));
      anon.socket.sendText("{not json", true).join();
      assertThat(anon.nextOfType("error", Duration.ofSeconds(5)).getJsonObject("error").getString("type")).endsWith("/malformed-json");
      anon.send(new JsonObject().put("type", "submit").put("requestId", "r1")
          .put("job", new JsonObject().put("kind", "sleep").put("gpus", 1).put("extra", true)));
      JsonObject unknown = anon.nextOfType("error", Duration.ofSeconds(5));
      assertThat(unknown.getString("requestId")).isEqualTo("r1");
      assertThat(unknown.getJsonObject("error").getString("type")).endsWith("/unknown-field");
      anon.send(new JsonObject().put("type", "submit").put("requestId", "r2")
          .put("job", new JsonObject().put("kind", "sleep").put("gpus", 64)));
      assertThat(anon.nextOfType("error", Duration.ofSeconds(5)).getJsonObject("error").getString("type")).endsWith("/unsatisfiable");
      anon.send(new JsonObject().put("type", "dance"));
      assertThat(anon.nextOfType("error", Duration.ofSeconds(5)).getJsonObject("error").getString("type")).endsWith("/malformed-message");
    }
    assertThat(jobCount()).isEqualTo(jobs);
  }

  @Test
  void anIdempotencyKeyReturnsTheSameJobOnce() {
    int jobs = jobCount();
    String body = "{\"kind\":\"sleep\",\"gpus\":1,\"maxSeconds\":5,\"params\":{\"ms\":1}}";
    var req = java.net.http.HttpRequest.newBuilder(java.net.URI.create(s.base() + "/api/v1/jobs"))
        .header("Authorization", "Bearer " + TestService.DEMO_KEY).header("Idempotency-Key", "once-42")
        .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body)).build();
    try {
      var first = s.http.send(req, java.net.http.HttpResponse.BodyHandlers.ofString());
      var second = s.http.send(req, java.net.http.HttpResponse.BodyHandlers.ofString());
      assertThat(first.statusCode()).isEqualTo(202);
      assertThat(second.statusCode()).isEqualTo(200);
      assertThat(s.json(second).getString("id")).isEqualTo(s.json(first).getString("id"));
    } catch (Exception e) {
      throw new AssertionError(e);
    }
    assertThat(jobCount()).isEqualTo(jobs + 1);
  }
}
