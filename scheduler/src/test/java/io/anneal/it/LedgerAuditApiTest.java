package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The admin's audit of the running service's ledger (ADR 14): jobs run and settle as usual, the audit
 * finds nothing; a balance changed behind the ledger's back is found, while the service keeps running.
 */
class LedgerAuditApiTest {
  @TempDir Path dir;

  @Test
  void theAdminAuditsTheLedgerOfTheRunningService() throws Exception {
    try (TestService s = TestService.start(dir)) {
      List<String> jobs = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
            .put("maxSeconds", 60).put("params", new JsonObject().put("ms", 50)).encode());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(202);
        jobs.add(s.json(r).getString("id"));
      }
      s.await(Duration.ofSeconds(30), () -> jobs.stream().allMatch(j -> s.job(j).getString("state").equals("SETTLED")));

      var ok = s.get("/api/v1/ledger/audit", TestService.ADMIN_KEY);
      assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
      JsonObject audit = s.json(ok);
      assertThat(audit.getBoolean("clean")).as(ok.body()).isTrue();
      assertThat(audit.getLong("findingCount")).isZero();
      assertThat(audit.getJsonArray("findings")).isEmpty();
      assertThat(audit.getJsonObject("checked").getString("receipts")).startsWith("3 settled receipts in ");
      assertThat(audit.getJsonObject("checked").fieldNames()).containsExactly("journal", "balance", "receipts", "entries", "epochs", "payouts", "supply");
      assertThat(audit.getLong("tookMs")).isNotNegative();

      // a single instance plays all roles and holds no lease (cluster mode's, ADR 19)
      JsonObject cluster = s.json(s.get("/api/v1/cluster", TestService.ADMIN_KEY));
      assertThat(cluster.getBoolean("cluster")).isFalse();
      assertThat(cluster.getJsonArray("roles").getList()).containsExactly("api", "billing", "scheduler", "worker");
      assertThat(cluster.getJsonArray("leases")).isEmpty();

      String tenant = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getString("id");
      try (var c = s.service.database().connection(); var st = c.createStatement()) {
        assertThat(st.executeUpdate("UPDATE balance SET amount = amount + 7 WHERE account = 'tenant:" + tenant
            + "' AND denom = 'uact'")).isEqualTo(1);
      }
      var found = s.get("/api/v1/ledger/audit?maxFindings=5", TestService.ADMIN_KEY);
      assertThat(found.statusCode()).isEqualTo(200);
      JsonObject bad = s.json(found);
      assertThat(bad.getBoolean("clean")).isFalse();
      assertThat(bad.getLong("findingCount")).isEqualTo(1);
      JsonObject f = bad.getJsonArray("findings").getJsonObject(0);
      assertThat(f.getString("check")).isEqualTo("balance");
      assertThat(f.getString("subject")).isEqualTo("tenant:" + tenant + " uact");
      assertThat(s.get("/ready", null).statusCode()).isEqualTo(200);

      assertThat(s.get("/api/v1/ledger/audit", TestService.DEMO_KEY).statusCode()).isEqualTo(403);
      assertThat(s.get("/api/v1/ledger/audit", null).statusCode()).isEqualTo(401);
      var invalid = s.get("/api/v1/ledger/audit?maxFindings=0", TestService.ADMIN_KEY);
      assertThat(invalid.statusCode()).isEqualTo(422);
      assertThat(invalid.body()).contains("maxFindings must be 1..10000");
    }
  }

  @Test
  void theBillingRoleAuditsPeriodicallyAndSaysWhatItFoundInMetrics() throws Exception {
    try (TestService s = TestService.start(dir, "--ledger-audit-seconds", "1")) {
      s.await(Duration.ofSeconds(20), () -> s.get("/metrics", null).body().contains("anneal_ledger_audit_findings 0.0"));
      String metrics = s.get("/metrics", null).body();
      assertThat(metrics).containsPattern("anneal_ledger_audit_last_ended_seconds [1-9]");
      assertThat(metrics).containsPattern("anneal_ledger_audit_seconds_count [1-9]");
      String tenant = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getString("id");
      try (var c = s.service.database().connection(); var st = c.createStatement()) {
        st.executeUpdate("UPDATE balance SET amount = amount - 3 WHERE account = 'tenant:" + tenant + "' AND denom = 'uact'");
      }
      s.await(Duration.ofSeconds(20), () -> s.get("/metrics", null).body().contains("anneal_ledger_audit_findings 1.0"));
    }
  }
}
