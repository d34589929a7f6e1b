package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A tenant's API key is replaced by the admin or by the tenant itself: the old key is refused at once,
 * for requests and for the WebSocket sessions opened with it; a retry with a given key changes
 * nothing; a key in use is refused; the new key outlives a restart.
 */
class TenantKeyRotationTest {
  @TempDir Path dir;

  private static final String K1 = "acme-key-first-0123";
  private static final String K2 = "acme-key-second-0123";

  private static String sleep() {
    return new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 60)
        .put("params", new JsonObject().put("ms", 10)).encode();
  }

  @Test
  void theOldKeyStopsWorkingEverywhereAtOnce() throws Exception {
    String generated;
    String tenantId;
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      var created = s.post("/api/v1/tenants", TestService.ADMIN_KEY, new JsonObject().put("name", "acme").put("apiKey", K1).encode());
      assertThat(created.statusCode()).isEqualTo(201);
      tenantId = s.json(created).getString("id");
      assertThat(s.get("/api/v1/me", K1).statusCode()).isEqualTo(200); // the key is now cached by the API
      TestService.Ws ws = s.ws(K1);
      ws.nextOfType("authenticated", Duration.ofSeconds(5));
      TestService.Ws demoWs = s.ws(TestService.DEMO_KEY);
      demoWs.nextOfType("authenticated", Duration.ofSeconds(5));

      // refused, and nothing changes: no key, another tenant's key, a bad key, a key in use, no such tenant
      assertThat(s.post("/api/v1/tenants/" + tenantId + "/keys", null, "{}").statusCode()).isEqualTo(401);
      assertThat(s.post("/api/v1/tenants/" + tenantId + "/keys", TestService.DEMO_KEY, "{}").statusCode()).isEqualTo(403);
      assertThat(s.post("/api/v1/tenants/" + tenantId + "/keys", K1, "{\"apiKey\":\"short\"}").statusCode()).isEqualTo(422);
      assertThat(s.post("/api/v1/tenants/" + tenantId + "/keys", K1, "{\"apiKey\":\"" + K2 + "\",\"x\":1}").statusCode())
          .isEqualTo(422);
      var taken = s.post("/api/v1/tenants/" + tenantId + "/keys", K1, "{\"apiKey\":\"" + TestService.DEMO_KEY + "\"}");
      assertThat(taken.statusCode()).isEqualTo(409);
      assertThat(s.json(taken).getString("type")).endsWith("/conflict");
      assertThat(s.post("/api/v1/tenants/" + tenantId + "/keys", K1, "{\"apiKey\":\"" + TestService.ADMIN_KEY + "\"}").statusCode())
          .isEqualTo(409);
      assertThat(s.post("/api/v1/tenants/t_nope/keys", TestService.ADMIN_KEY, "{}").statusCode()).isEqualTo(404);
      assertThat(s.get("/api/v1/me", K1).statusCode()).isEqualTo(200);
      assertThat(s.get("/api/v1/me", TestService.DEMO_KEY).statusCode()).isEqualTo(200);

      // the tenant rotates its own key to one it chose
      var rotated = s.post("/api/v1/tenants/" + tenantId + "/keys", K1, "{\"apiKey\":\"" + K2 + "\"}");
      assertThat(rotated.statusCode()).isEqualTo(201);
      assertThat(s.json(rotated).getString("apiKey")).isEqualTo(K2);
      assertThat(s.get("/api/v1/me", K1).statusCode()).isEqualTo(401);
      assertThat(s.json(s.get("/api/v1/me", K2)).getString("id")).isEqualTo(tenantId);
      assertThat(s.post("/api/v1/jobs", K1, sleep()).statusCode()).isEqualTo(401);
      assertThat(s.post("/api/v1/jobs", K2, sleep()).statusCode()).as("known, with no ACT yet").isEqualTo(402);

      // the session opened with the old key is told and closed; another tenant's is not
      JsonObject error = ws.nextOfType("error", Duration.ofSeconds(5)).getJsonObject("error");
      assertThat(error.getString("type")).endsWith("/unauthorized");
      assertThat(error.getString("title")).isEqualTo("API key rotated");
      assertThat(ws.closed.get(5, TimeUnit.SECONDS)).isEqualTo(1008);
      assertThat(demoWs.closed).isNotDone();
      demoWs.send(new JsonObject().put("type", "submit").put("requestId", "d1").put("job", new JsonObject(sleep())));
      assertThat(demoWs.nextOfType("accepted", Duration.ofSeconds(5)).getString("requestId")).isEqualTo("d1");
      demoWs.close();
      // a new session with the old key is refused; with the new key it authenticates
      TestService.Ws old = s.ws(K1);
      assertThat(old.closed.get(5, TimeUnit.SECONDS)).isEqualTo(1008);
      TestService.Ws fresh = s.ws(K2);
      assertThat(fresh.nextOfType("authenticated", Duration.ofSeconds(5)).getString("tenantId")).isEqualTo(tenantId);
      fresh.close();

      // the same call again, with the new key (its answer was lost, say): 200, nothing changes
      var again = s.post("/api/v1/tenants/" + tenantId + "/keys", K2, "{\"apiKey\":\"" + K2 + "\"}");
      assertThat(again.statusCode()).isEqualTo(200);
      assertThat(s.json(again).getBoolean("rotated")).isFalse();
      assertThat(s.get("/api/v1/me", K2).statusCode()).isEqualTo(200);

      // the admin rotates it again, to a generated key
      var byAdmin = s.post("/api/v1/tenants/" + tenantId + "/keys", TestService.ADMIN_KEY, "");
      assertThat(byAdmin.statusCode()).isEqualTo(201);
      generated = s.json(byAdmin).getString("apiKey");
      assertThat(generated).startsWith("ak_").hasSizeGreaterThanOrEqualTo(16);
      assertThat(s.get("/api/v1/me", K2).statusCode()).isEqualTo(401);
      assertThat(s.get("/api/v1/me", generated).statusCode()).isEqualTo(200);
    }
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      assertThat(s.json(s.get("/api/v1/me", generated)).getString("id")).isEqualTo(tenantId);
      assertThat(s.get("/api/v1/me", K1).statusCode()).isEqualTo(401);
      assertThat(s.get("/api/v1/me", K2).statusCode()).isEqualTo(401);
    }
  }

  /**
   * A rotation with {@code graceSeconds}: the old key goes on working — requests, open sessions, new
   * sessions — until the grace ends, then it is refused and its sessions are closed; the new key works
   * from the start; another tenant cannot take the old key meanwhile; a rotation without grace ends it.
   */
  @Test
  void withAGraceTheOldKeyWorksUntilItEndsThenStops() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      String tenantId = s.json(s.post("/api/v1/tenants", TestService.ADMIN_KEY,
          new JsonObject().put("name", "acme").put("apiKey", K1).encode())).getString("id");
      String keys = "/api/v1/tenants/" + tenantId + "/keys";
      TestService.Ws before = s.ws(K1);
      before.nextOfType("authenticated", Duration.ofSeconds(5));
      for (String bad : new String[] {"-1", "1.5", "\"10\"", "604801"}) {
        assertThat(s.post(keys, K1, "{\"apiKey\":\"" + K2 + "\",\"graceSeconds\":" + bad + "}").statusCode())
            .as("graceSeconds " + bad).isEqualTo(422);
      }
      assertThat(s.get("/api/v1/me", K2).statusCode()).as("nothing changed").isEqualTo(401);

      long asked = System.currentTimeMillis();
      var rotated = s.post(keys, K1, "{\"apiKey\":\"" + K2 + "\",\"graceSeconds\":3}");
      assertThat(rotated.statusCode()).isEqualTo(201);
      long until = s.json(rotated).getLong("previousKeyValidUntil");
      assertThat(until).isBetween(asked + 3_000, System.currentTimeMillis() + 3_000);
      assertThat(s.json(s.get("/api/v1/me", K2)).getString("id")).isEqualTo(tenantId);
      assertThat(s.json(s.get("/api/v1/me", K1)).getString("id")).as("the old key, in its grace").isEqualTo(tenantId);
      TestService.Ws during = s.ws(K1);
      assertThat(during.nextOfType("authenticated", Duration.ofSeconds(5)).getLong("keyValidUntil")).isEqualTo(until);
      assertThat(s.post("/api/v1/tenants", TestService.ADMIN_KEY, new JsonObject().put("name", "other").put("apiKey", K1)
          .encode()).statusCode()).as("the old key is still the tenant's").isEqualTo(409);
      assertThat(s.post(keys, K1, "{\"apiKey\":\"" + K2 + "\"}").statusCode()).as("the same rotation again").isEqualTo(200);

      // the grace ends: the old key is refused, the sessions opened with it are closed, the new key's not
      TestService.Ws fresh = s.ws(K2);
      fresh.nextOfType("authenticated", Duration.ofSeconds(5));
      assertThat(before.closed.get(10, TimeUnit.SECONDS)).isEqualTo(1008);
      assertThat(System.currentTimeMillis()).as("not before the grace ended").isGreaterThanOrEqualTo(until);
      assertThat(during.closed.get(5, TimeUnit.SECONDS)).isEqualTo(1008);
      assertThat(s.get("/api/v1/me", K1).statusCode()).isEqualTo(401);
      assertThat(fresh.closed).isNotDone();
      fresh.send(new JsonObject().put("type", "subscribe"));
      assertThat(s.get("/api/v1/me", K2).statusCode()).isEqualTo(200);

      // a grace ended by a rotation without one
      String k3 = "acme-key-third-01234";
      assertThat(s.post(keys, K2, "{\"apiKey\":\"" + k3 + "\",\"graceSeconds\":600}").statusCode()).isEqualTo(201);
      assertThat(s.get("/api/v1/me", K2).statusCode()).isEqualTo(200);
      String k4 = "acme-key-fourth-0123";
      assertThat(s.post(keys, k3, "{\"apiKey\":\"" + k4 + "\"}").statusCode()).isEqualTo(201);
      assertThat(s.get("/api/v1/me", K2).statusCode()).as("the grace of the key before ends too").isEqualTo(401);
      assertThat(s.get("/api/v1/me", k3).statusCode()).isEqualTo(401);
      assertThat(fresh.closed.get(5, TimeUnit.SECONDS)).isEqualTo(1008);
      assertThat(s.get("/api/v1/me", k4).statusCode()).isEqualTo(200);
    }
  }

  /** ANNEAL_DEMO_TENANT names a key: once the demo tenant's key is rotated, a start with the old value is refused. */
  @Test
  void aStartWithTheDemoTenantsOldKeyIsRefused() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      String demo = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getString("id");
      assertThat(s.post("/api/v1/tenants/" + demo + "/keys", TestService.DEMO_KEY, "{\"apiKey\":\"demo-key-rotated-0123\"}")
          .statusCode()).isEqualTo(201);
    }
    assertThatThrownBy(() -> TestService.start(dir, "--cpu-devices", "1"))
        .hasStackTraceContaining("ANNEAL_DEMO_TENANT: a tenant named 'demo' exists with another key");
  }
}
