package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.store.TenantStore;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * When each API key last authenticated a request — the tenant's key, its previous key during a
 * rotation's grace, read-only keys, admin keys — is shown where the keys are listed, so that an operator
 * sees which keys are in use before revoking one or ending a grace; it outlives a restart. A key never
 * used shows none; a refused key is not a use.
 */
class KeyUseTest {
  @TempDir Path dir;

  private static final String K1 = "key-use-first-0123456789";
  private static final String K2 = "key-use-second-0123456789";

  @Test
  void aKeysLastUseIsShownWhereItIsListedAndOutlivesARestartOnH2() throws Exception {
    lastUses();
  }

  /** The same on PostgreSQL, where an instance's write keeps a later time another wrote. */
  @Test
  void aKeysLastUseIsShownWhereItIsListedAndOutlivesARestartOnPostgresql() throws Exception {
    io.anneal.billing.ledger.TestDatabases.requirePostgres();
    String schema = "key_use_" + Long.toHexString(System.nanoTime());
    try {
      lastUses("--db-url", io.anneal.billing.ledger.TestDatabases.localPostgresUrl() + "&currentSchema=" + schema);
    } finally {
      try (var c = java.sql.DriverManager.getConnection(io.anneal.billing.ledger.TestDatabases.localPostgresUrl());
          var st = c.createStatement()) {
        st.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
      }
    }
  }

  private void lastUses(String... store) throws Exception {
    String[] args = java.util.stream.Stream.concat(java.util.stream.Stream.of("--cpu-devices", "1"), java.util.Arrays.stream(store))
        .toArray(String[]::new);
    JsonObject tenantBefore;
    JsonArray readKeysBefore;
    JsonObject adminKeyBefore;
    String tenantId;
    String tenantPath;
    // sessions are looked at every second (cluster.tenantRecheckSeconds): an open one is its key in use
    try (TestService s = TestService.start(dir, null, java.util.Map.of("ANNEAL_CLUSTER_TENANT_RECHECK_SECONDS", "1"), args)) {
      long t0 = System.currentTimeMillis();
      tenantId = s.json(s.post("/api/v1/tenants", TestService.ADMIN_KEY,
          new JsonObject().put("name", "acme").put("apiKey", K1).encode())).getString("id");
      tenantPath = "/api/v1/tenants/" + tenantId;
      JsonObject fresh = s.json(s.get(tenantPath, TestService.ADMIN_KEY));
      assertThat(fresh.getValue("keyLastUsedAtMs")).as("a key never used").isNull();
      assertThat(fresh.containsKey("previousKeyUntilMs")).isFalse();
      JsonObject admin = s.json(s.get("/api/v1/admin-keys", TestService.ADMIN_KEY)).getJsonArray("keys").getJsonObject(0);
      assertThat(admin.getLong("lastUsedAt")).as("the admin key, used just now").isBetween(t0, System.currentTimeMillis());

      // the tenant's key: its use is recorded; a wrong key is not anyone's use
      long t1 = System.currentTimeMillis();
      assertThat(s.get("/api/v1/me", K1).statusCode()).isEqualTo(200);
      long t1b = System.currentTimeMillis();
      assertThat(s.get("/api/v1/me", "key-use-wrong-0123456789").statusCode()).isEqualTo(401);
      assertThat(s.json(s.get(tenantPath, TestService.ADMIN_KEY)).getLong("keyLastUsedAtMs")).isBetween(t1, t1b);
      // a request answered from the key cache is a use as well
      s.await(Duration.ofSeconds(1), () -> System.currentTimeMillis() > t1b); // a later millisecond than the first use
      long t2 = System.currentTimeMillis();
      assertThat(s.get("/api/v1/jobs", K1).statusCode()).isEqualTo(200);
      long t2b = System.currentTimeMillis();
      assertThat(s.json(s.get(tenantPath, K1)).getLong("keyLastUsedAtMs")).isGreaterThanOrEqualTo(t2).isLessThanOrEqualTo(
          System.currentTimeMillis());

      // a read-only key: none until used, then the time of its use
      String readKey = s.json(s.post(tenantPath + "/read-keys", K1, "{\"name\":\"dashboard\"}")).getString("apiKey");
      JsonObject listed = s.json(s.get(tenantPath + "/read-keys", K1)).getJsonArray("readKeys").getJsonObject(0);
      assertThat(listed.getValue("lastUsedAtMs")).isNull();
      long t3 = System.currentTimeMillis();
      assertThat(s.get("/api/v1/jobs", readKey).statusCode()).isEqualTo(200);
      long t3b = System.currentTimeMillis();
      assertThat(s.post("/api/v1/jobs", readKey, "{}").statusCode()).as("refused, but the key authenticated").isEqualTo(403);
      listed = s.json(s.get(tenantPath + "/read-keys", K1)).getJsonArray("readKeys").getJsonObject(0);
      assertThat(listed.getLong("lastUsedAtMs")).isBetween(t3, System.currentTimeMillis());
      // a dashboard's WebSocket session left open: its key stays in use without a request
      TestService.Ws board = s.ws(readKey);
      board.nextOfType("authenticated", Duration.ofSeconds(5));
      long opened = System.currentTimeMillis();
      s.await(Duration.ofSeconds(10), () -> s.json(s.get(tenantPath + "/read-keys", K1)).getJsonArray("readKeys")
          .getJsonObject(0).getLong("lastUsedAtMs") >= opened + 1_500);
      board.close();

      // a rotation with a grace: the previous key's last use is shown until the grace ends, the new key has none
      assertThat(s.post(tenantPath + "/keys", TestService.ADMIN_KEY, "{\"apiKey\":\"" + K2 + "\",\"graceSeconds\":3600}")
          .statusCode()).isEqualTo(201);
      JsonObject rotated = s.json(s.get(tenantPath, TestService.ADMIN_KEY));
      assertThat(rotated.getValue("keyLastUsedAtMs")).as("the new key, not used yet").isNull();
      assertThat(rotated.getLong("previousKeyUntilMs")).isGreaterThan(System.currentTimeMillis() + 3_000_000);
      long previousUse = rotated.getLong("previousKeyLastUsedAtMs");
      assertThat(previousUse).isBetween(t2, System.currentTimeMillis());
      long beforeOld = System.currentTimeMillis();
      s.await(Duration.ofSeconds(1), () -> System.currentTimeMillis() > beforeOld); // a later millisecond than the last use
      long t4 = System.currentTimeMillis();
      assertThat(s.get("/api/v1/me", K1).statusCode()).as("the old key, in its grace").isEqualTo(200);
      assertThat(s.json(s.get(tenantPath, TestService.ADMIN_KEY)).getLong("previousKeyLastUsedAtMs"))
          .as("a client still on the old key").isGreaterThanOrEqualTo(t4);
      long t5 = System.currentTimeMillis();
      TestService.Ws ws = s.ws(K2);
      ws.nextOfType("authenticated", Duration.ofSeconds(5));
      ws.close();
      tenantBefore = s.json(s.get(tenantPath, TestService.ADMIN_KEY));
      assertThat(tenantBefore.getLong("keyLastUsedAtMs")).as("a WebSocket session opened with the new key").isGreaterThanOrEqualTo(t5);
      assertThat(s.json(s.get("/api/v1/tenants", TestService.ADMIN_KEY)).getJsonArray("tenants").stream()
          .map(o -> (JsonObject) o).filter(o -> o.getString("id").equals(tenantId)).findFirst().orElseThrow()
          .getLong("keyLastUsedAtMs")).as("listed among the tenants too").isEqualTo(tenantBefore.getLong("keyLastUsedAtMs"));
      readKeysBefore = s.json(s.get(tenantPath + "/read-keys", TestService.ADMIN_KEY)).getJsonArray("readKeys");
      adminKeyBefore = s.json(s.get("/api/v1/admin-keys", TestService.ADMIN_KEY)).getJsonArray("keys").getJsonObject(0);
      assertThat(adminKeyBefore.getString("fingerprint")).isEqualTo(TenantStore.fingerprint(TestService.ADMIN_KEY));
    }
    // a restart: what the instance saw was written when it stopped (nothing used in between but the admin's reads)
    try (TestService s = TestService.start(dir, args)) {
      JsonObject tenantAfter = s.json(s.get(tenantPath, TestService.ADMIN_KEY));
      assertThat(tenantAfter.getLong("keyLastUsedAtMs")).isEqualTo(tenantBefore.getLong("keyLastUsedAtMs"));
      assertThat(tenantAfter.getLong("previousKeyLastUsedAtMs")).isEqualTo(tenantBefore.getLong("previousKeyLastUsedAtMs"));
      assertThat(s.json(s.get(tenantPath + "/read-keys", TestService.ADMIN_KEY)).getJsonArray("readKeys")).isEqualTo(readKeysBefore);
      assertThat(s.json(s.get("/api/v1/admin-keys", TestService.ADMIN_KEY)).getJsonArray("keys").getJsonObject(0)
          .getLong("lastUsedAt")).isGreaterThanOrEqualTo(adminKeyBefore.getLong("lastUsedAt"));
    }
  }
}
