package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.http.HttpRequest;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Read-only keys (ADR 30): a tenant makes one for a dashboard; it reads what the tenant's key reads and
 * is refused for every operation that could change something — every non-GET operation of the API's own
 * OpenAPI document, so an endpoint added later is checked too — over REST and the WebSocket; a revoked
 * or expired one authenticates nothing and its sessions are closed.
 */
class ReadOnlyKeysTest {
  @TempDir Path dir;

  @Test
  void aReadOnlyKeyReadsWhatTheTenantReadsAndChangesNothing() throws Exception {
    try (TestService s = TestService.start(dir)) {
      String demo = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getString("id");
      String job = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
          .put("maxSeconds", 60).put("params", new JsonObject().put("ms", 10)).encode())).getString("id");
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(job).getString("state")));
      String webhook = s.json(s.post("/api/v1/webhooks", TestService.DEMO_KEY,
          "{\"url\":\"http://127.0.0.1:9/hook\",\"events\":[\"job.settled\"]}")).getString("id");

      // bad requests make nothing; another tenant's key may not make one for the demo tenant
      String other = s.json(s.post("/api/v1/tenants", TestService.ADMIN_KEY, "{\"name\":\"other\"}")).getString("apiKey");
      assertThat(s.post("/api/v1/tenants/" + demo + "/read-keys", other, "{\"name\":\"x\"}").statusCode()).isEqualTo(403);
      assertThat(s.post("/api/v1/tenants/" + demo + "/read-keys", TestService.DEMO_KEY, "{}").statusCode()).isEqualTo(422);
      assertThat(s.post("/api/v1/tenants/" + demo + "/read-keys", TestService.DEMO_KEY, "{\"name\":\"x\",\"expiresInDays\":0}")
          .statusCode()).isEqualTo(422);
      assertThat(s.post("/api/v1/tenants/" + demo + "/read-keys", TestService.DEMO_KEY, "{\"name\":\"x\",\"scope\":\"all\"}")
          .statusCode()).isEqualTo(422);
      assertThat(s.post("/api/v1/tenants/" + demo + "/read-keys", TestService.DEMO_KEY,
          "{\"name\":\"x\",\"apiKey\":\"" + TestService.ADMIN_KEY + "\"}").statusCode()).as("an admin's key").isEqualTo(409);
      assertThat(s.json(s.get("/api/v1/tenants/" + demo + "/read-keys", TestService.DEMO_KEY)).getJsonArray("readKeys")).isEmpty();

      var made = s.post("/api/v1/tenants/" + demo + "/read-keys", TestService.DEMO_KEY, "{\"name\":\"grafana\",\"expiresInDays\":30}");
      assertThat(made.statusCode()).as(made.body()).isEqualTo(201);
      String readKey = s.json(made).getString("apiKey");
      assertThat(readKey).startsWith("rk_");
      assertThat(s.json(made).getLong("expiresAtMs")).isBetween(System.currentTimeMillis() + 29L * 86_400_000,
          System.currentTimeMillis() + 30L * 86_400_000);

      // it reads as the tenant does
      assertThat(s.json(s.get("/api/v1/me", readKey)).getString("id")).isEqualTo(demo);
      assertThat(s.get("/api/v1/jobs/" + job, readKey).statusCode()).isEqualTo(200);
      assertThat(s.json(s.get("/api/v1/jobs", readKey)).getJsonArray("jobs").size()).isEqualTo(1);
      assertThat(s.get("/api/v1/receipts/" + job, readKey).statusCode()).isEqualTo(200);
      assertThat(s.get("/api/v1/tenants/" + demo + "/statement", readKey).statusCode()).isEqualTo(200);
      assertThat(s.get("/api/v1/webhooks/" + webhook + "/deliveries", readKey).statusCode()).isEqualTo(200);
      JsonObject balance = s.json(s.get("/api/v1/tenants/" + demo + "/balance", readKey));

      // every operation of the API that is not a read is refused to it, before anything is looked at
      Map<String, String> params = Map.of("id", demo, "nodeId", s.service.nodeId(), "device", "0",
          "fingerprint", "sha256:0123456789abcdef");
      JsonNode paths = new ObjectMapper(new YAMLFactory()).readTree(s.get("/openapi.yaml", null).body()).get("paths");
      List<String> refused = new ArrayList<>();
      for (Iterator<Map.Entry<String, JsonNode>> it = paths.fields(); it.hasNext();) {
        Map.Entry<String, JsonNode> p = it.next();
        for (String method : List.of("post", "put", "patch", "delete")) {
          if (!p.getValue().has(method)) continue;
          String path = p.getKey();
          if (path.startsWith("/api/v1/jobs/")) path = path.replace("{id}", job);
          if (path.startsWith("/api/v1/webhooks/")) path = path.replace("{id}", webhook);
          for (Map.Entry<String, String> v : params.entrySet()) path = path.replace("{" + v.getKey() + "}", v.getValue());
          var r = s.http.send(HttpRequest.newBuilder(URI.create(s.base() + path)).header("Authorization", "Bearer " + readKey)
              .header("content-type", "application/json")
              .method(method.toUpperCase(), HttpRequest.BodyPublishers.ofString("{\"name\":\"x\",\"akt\":\"5\"}"))
              .timeout(Duration.ofSeconds(20)).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
          assertThat(r.statusCode()).as(method + " " + path + ": " + r.body()).isEqualTo(403);
          refused.add(method.toUpperCase() + " " + path);
        }
      }
      assertThat(refused).hasSizeGreaterThanOrEqualTo(20).contains("POST /api/v1/jobs", "DELETE /api/v1/webhooks/" + webhook,
          "POST /api/v1/tenants/" + demo + "/read-keys", "POST /api/v1/tenants/" + demo + "/keys");
      var submit = s.post("/api/v1/jobs", readKey, "{\"kind\":\"sleep\",\"params\":{\"ms\":1}}");
      assertThat(s.json(submit).getString("type")).endsWith("/read-only-key");
      // nothing changed: one job, the webhook there, the balance as it was, the demo key still the tenant's
      assertThat(s.json(s.get("/api/v1/jobs", TestService.DEMO_KEY)).getJsonArray("jobs").size()).isEqualTo(1);
      assertThat(s.json(s.get("/api/v1/webhooks", TestService.DEMO_KEY)).getJsonArray("webhooks").size()).isEqualTo(1);
      assertThat(s.json(s.get("/api/v1/tenants/" + demo + "/balance", TestService.DEMO_KEY))).isEqualTo(balance);
      assertThat(s.get("/api/v1/me", TestService.DEMO_KEY).statusCode()).isEqualTo(200);
      assertThat(s.json(s.get("/api/v1/tenants/" + demo + "/read-keys", TestService.DEMO_KEY)).getJsonArray("readKeys")).hasSize(1);

      // over the WebSocket: job events, but no submit or cancel
      TestService.Ws ws = s.ws(readKey);
      ws.send(new JsonObject().put("type", "submit").put("requestId", "w1").put("job", new JsonObject().put("kind", "sleep")));
      assertThat(ws.nextOfType("error", Duration.ofSeconds(5)).getJsonObject("error").getString("type")).endsWith("/read-only-key");
      ws.send(new JsonObject().put("type", "subscribe"));
      ws.nextOfType("subscribed", Duration.ofSeconds(5));
      String live = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
          .put("maxSeconds", 60).put("params", new JsonObject().put("ms", 10)).encode())).getString("id");
      assertThat(ws.nextOfType("job", Duration.ofSeconds(10)).getString("jobId")).isEqualTo(live);

      // revoked: refused at once, its session closed, the tenant's own key unaffected
      String fingerprint = s.json(made).getString("fingerprint");
      assertThat(s.delete("/api/v1/tenants/" + demo + "/read-keys/" + fingerprint, TestService.DEMO_KEY).statusCode()).isEqualTo(204);
      assertThat(s.get("/api/v1/me", readKey).statusCode()).isEqualTo(401);
      JsonObject closed = ws.nextOfType("error", Duration.ofSeconds(5));
      assertThat(closed.getJsonObject("error").getString("title")).isEqualTo("API key revoked");
      ws.close();
      assertThat(s.delete("/api/v1/tenants/" + demo + "/read-keys/" + fingerprint, TestService.DEMO_KEY).statusCode())
          .as("revoked again").isEqualTo(204);
      assertThat(s.delete("/api/v1/tenants/" + demo + "/read-keys/sha256:ffffffff", TestService.DEMO_KEY).statusCode()).isEqualTo(404);
      assertThat(s.json(s.get("/api/v1/tenants/" + demo + "/read-keys", TestService.DEMO_KEY)).getJsonArray("readKeys")
          .getJsonObject(0).getString("state")).isEqualTo("revoked");
      assertThat(s.get("/api/v1/me", TestService.DEMO_KEY).statusCode()).isEqualTo(200);
    }
  }

  /** A read-only key outlives a rotation of the tenant's own key, which closes only the sessions of that key. */
  @Test
  void aReadOnlyKeyOutlivesTheTenantKeysRotation() throws Exception {
    try (TestService s = TestService.start(dir)) {
      String demo = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getString("id");
      String readKey = s.json(s.post("/api/v1/tenants/" + demo + "/read-keys", TestService.ADMIN_KEY, "{\"name\":\"ops\"}"))
          .getString("apiKey");
      TestService.Ws ws = s.ws(readKey);
      assertThat(s.post("/api/v1/tenants/" + demo + "/keys", TestService.DEMO_KEY, "").statusCode()).isEqualTo(201);
      assertThat(s.get("/api/v1/me", TestService.DEMO_KEY).statusCode()).isEqualTo(401);
      assertThat(s.get("/api/v1/me", readKey).statusCode()).isEqualTo(200);
      ws.send(new JsonObject().put("type", "subscribe"));
      ws.nextOfType("subscribed", Duration.ofSeconds(5));
      ws.close();
    }
  }
}
