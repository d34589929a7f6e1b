package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A tenant's GPU quota holds in placement and at submit; an admin changes it at run time; restart keeps it. */
class TenantPolicyTest {
  @TempDir Path dir;

  private static final String KEY = "quota-key-0123456789";

  private static JsonObject job(TestService s, String id) {
    return s.json(s.get("/api/v1/jobs/" + id, KEY));
  }

  private static String sleep(int gpus, long ms) {
    return new JsonObject().put("kind", "sleep").put("gpus", gpus).put("maxSeconds", 60)
        .put("params", new JsonObject().put("ms", ms)).encode();
  }

  private static List<String> submit(TestService s, String key, int n, long ms) {
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < n; i++) ids.add(s.json(s.post("/api/v1/jobs", key, sleep(1, ms))).getString("id"));
    return ids;
  }

  /** Most jobs of {@code ids} that ran at the same time, from their recorded start and end. */
  private static int maxOverlap(TestService s, List<String> ids) {
    int best = 0;
    for (String a : ids) {
      long t = job(s, a).getLong("startedAt");
      int n = 0;
      for (String b : ids) {
        JsonObject j = job(s, b);
        if (j.getLong("startedAt") <= t && t < j.getLong("endedAt")) n++;
      }
      best = Math.max(best, n);
    }
    return best;
  }

  @Test
  void aQuotaCapsConcurrentGpusAndCanBeChangedAndSurvivesRestart() throws Exception {
    String key = KEY;
    String tenantId;
    try (TestService s = TestService.start(dir, "--cpu-devices", "4", "--tick-seconds", "1", "--min-epoch-ticks", "1")) {
      var created = s.post("/api/v1/tenants", TestService.ADMIN_KEY,
          new JsonObject().put("name", "capped").put("apiKey", key).put("gpuQuota", 1).put("weight", 2).encode());
      assertThat(created.statusCode()).isEqualTo(201);
      tenantId = s.json(created).getString("id");
      assertThat(s.json(created).getInteger("gpuQuota")).isEqualTo(1);
      s.post("/api/v1/tenants/" + tenantId + "/deposits", TestService.ADMIN_KEY, "{\"akt\":\"1000\"}");
      s.await(Duration.ofSeconds(10), () -> s.json(s.get("/api/v1/me", key)).getJsonObject("balance").getLong("uact") > 0);
      assertThat(s.json(s.get("/api/v1/me", key)).getDouble("weight")).isEqualTo(2.0);

      var tooBig = s.post("/api/v1/jobs", key, sleep(2, 10));
      assertThat(tooBig.statusCode()).isEqualTo(422);
      assertThat(s.json(tooBig).getString("detail")).contains("quota is 1");

      List<String> capped = submit(s, key, 3, 300);
      for (String id : capped) s.await(Duration.ofSeconds(30), () -> job(s, id).containsKey("endedAt"));
      assertThat(maxOverlap(s, capped)).isEqualTo(1);

      // a WebSocket session opened under the old quota
      TestService.Ws ws = s.ws(key);
      ws.nextOfType("authenticated", Duration.ofSeconds(5));
      ws.send(new JsonObject().put("type", "submit").put("requestId", "before").put("job", new JsonObject(sleep(2, 10))));
      assertThat(ws.nextOfType("error", Duration.ofSeconds(5)).getString("requestId")).isEqualTo("before");

      var bad = s.patch("/api/v1/tenants/" + tenantId, TestService.ADMIN_KEY, "{\"gpuQuota\":-1}");
      assertThat(bad.statusCode()).isEqualTo(422);
      var raised = s.patch("/api/v1/tenants/" + tenantId, TestService.ADMIN_KEY, "{\"gpuQuota\":3}");
      assertThat(raised.statusCode()).isEqualTo(200);
      assertThat(s.json(raised).getInteger("gpuQuota")).isEqualTo(3);
      assertThat(s.json(raised).getDouble("weight")).isEqualTo(2.0);
      // the key's tenant as the API knows it follows the change at once: at submit and in /me
      assertThat(s.json(s.get("/api/v1/me", key)).getInteger("gpuQuota")).isEqualTo(3);
      var twoGpus = s.post("/api/v1/jobs", key, sleep(2, 10));
      assertThat(twoGpus.statusCode()).as(twoGpus.body()).isEqualTo(202);
      String two = s.json(twoGpus).getString("id");
      s.await(Duration.ofSeconds(30), () -> job(s, two).containsKey("endedAt"));
      // and the session opened before the change follows it too
      ws.send(new JsonObject().put("type", "submit").put("requestId", "after").put("job", new JsonObject(sleep(2, 10))));
      JsonObject accepted = ws.nextOfType("accepted", Duration.ofSeconds(5));
      assertThat(accepted.getString("requestId")).isEqualTo("after");
      s.await(Duration.ofSeconds(30), () -> job(s, accepted.getString("jobId")).containsKey("endedAt"));
      List<String> wider = submit(s, key, 3, 600);
      for (String id : wider) s.await(Duration.ofSeconds(30), () -> job(s, id).containsKey("endedAt"));
      assertThat(maxOverlap(s, wider)).isGreaterThan(1);

      s.patch("/api/v1/tenants/" + tenantId, TestService.ADMIN_KEY, "{\"gpuQuota\":1}");
      var refusedAgain = s.post("/api/v1/jobs", key, sleep(2, 10));
      assertThat(refusedAgain.statusCode()).as(refusedAgain.body()).isEqualTo(422);
      assertThat(s.json(s.get("/api/v1/me", key)).getInteger("gpuQuota")).isEqualTo(1);
      ws.send(new JsonObject().put("type", "submit").put("requestId", "lowered").put("job", new JsonObject(sleep(2, 10))));
      assertThat(ws.nextOfType("error", Duration.ofSeconds(5)).getString("requestId")).isEqualTo("lowered");
      ws.close();
    }
    try (TestService s = TestService.start(dir, "--cpu-devices", "4")) {
      assertThat(s.json(s.get("/api/v1/me", key)).getInteger("gpuQuota")).isEqualTo(1);
      List<String> again = submit(s, key, 3, 300);
      for (String id : again) s.await(Duration.ofSeconds(30), () -> job(s, id).containsKey("endedAt"));
      assertThat(maxOverlap(s, again)).isEqualTo(1);
    }
  }

  /** An operator lists the tenants a page at a time with their policies; a tenant reads only itself. */
  @Test
  void anOperatorListsTheTenantsAndATenantReadsItself() throws Exception {
    try (TestService s = TestService.start(dir)) {
      String admin = TestService.ADMIN_KEY;
      JsonObject a = s.json(s.post("/api/v1/tenants", admin, "{\"name\":\"alpha\",\"gpuQuota\":2,\"nodeLabels\":{\"tier\":\"certified\"}}"));
      JsonObject b = s.json(s.post("/api/v1/tenants", admin, "{\"name\":\"beta\"}"));
      String demo = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getString("id");
      // every tenant, in the order made, one a page
      List<String> names = new ArrayList<>();
      String after = null;
      for (int page = 0; page < 5; page++) {
        JsonObject p = s.json(s.get("/api/v1/tenants?limit=1" + (after == null ? "" : "&after=" + after), admin));
        p.getJsonArray("tenants").forEach(t -> names.add(((JsonObject) t).getString("name")));
        after = p.getString("next");
        if (after == null) break;
      }
      assertThat(names).containsExactly("demo", "alpha", "beta");
      JsonObject all = s.json(s.get("/api/v1/tenants", admin));
      assertThat(all.getJsonArray("tenants")).hasSize(3);
      assertThat(all.getValue("next")).isNull();
      JsonObject alpha = all.getJsonArray("tenants").getJsonObject(1);
      assertThat(alpha.getString("id")).isEqualTo(a.getString("id"));
      assertThat(alpha.getInteger("gpuQuota")).isEqualTo(2);
      assertThat(alpha.getJsonObject("nodeLabels").getString("tier")).isEqualTo("certified");
      assertThat(alpha.getLong("createdAtMs")).isPositive();
      assertThat(alpha.containsKey("apiKey")).as("keys are never shown").isFalse();
      assertThat(s.get("/api/v1/tenants?limit=0", admin).statusCode()).isEqualTo(422);
      // a tenant: not the list, itself only
      assertThat(s.get("/api/v1/tenants", TestService.DEMO_KEY).statusCode()).isEqualTo(403);
      var self = s.get("/api/v1/tenants/" + demo, TestService.DEMO_KEY);
      assertThat(self.statusCode()).isEqualTo(200);
      assertThat(s.json(self).getString("name")).isEqualTo("demo");
      assertThat(s.get("/api/v1/tenants/" + b.getString("id"), TestService.DEMO_KEY).statusCode()).isEqualTo(403);
      assertThat(s.get("/api/v1/tenants/t_nope", admin).statusCode()).isEqualTo(404);
    }
  }
}
