package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.anneal.store.TenantStore;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Admin keys are added, listed by fingerprint and revoked: a revoked key is refused at once, the last
 * key that authenticates cannot be revoked, and a start naming a revoked key is refused.
 */
class AdminKeysTest {
  @TempDir Path dir;

  private static final String SECOND = "second-admin-key-0123";

  @Test
  void anAdminKeyIsReplacedAndTheOldOneRevokedOnH2() throws Exception {
    replaceAndRevoke();
  }

  /** The same on PostgreSQL, where revocations lock the keys that authenticate. */
  @Test
  void anAdminKeyIsReplacedAndTheOldOneRevokedOnPostgresql() throws Exception {
    io.anneal.billing.ledger.TestDatabases.requirePostgres();
    String schema = "admin_keys_" + Long.toHexString(System.nanoTime());
    try {
      replaceAndRevoke("--db-url", io.anneal.billing.ledger.TestDatabases.localPostgresUrl() + "&currentSchema=" + schema);
    } finally {
      try (var c = java.sql.DriverManager.getConnection(io.anneal.billing.ledger.TestDatabases.localPostgresUrl());
          var st = c.createStatement()) {
        st.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
      }
    }
  }

  private void replaceAndRevoke(String... store) throws Exception {
    String[] args = java.util.stream.Stream.concat(java.util.stream.Stream.of("--cpu-devices", "1"), java.util.Arrays.stream(store))
        .toArray(String[]::new);
    String first = TestService.ADMIN_KEY;
    String third;
    try (TestService s = TestService.start(dir, args)) {
      // only admins; a tenant's key is neither an admin nor can become one
      assertThat(s.get("/api/v1/admin-keys", null).statusCode()).isEqualTo(401);
      assertThat(s.get("/api/v1/admin-keys", TestService.DEMO_KEY).statusCode()).isEqualTo(403);
      assertThat(s.post("/api/v1/admin-keys", first, "{\"apiKey\":\"" + TestService.DEMO_KEY + "\"}").statusCode()).isEqualTo(409);
      assertThat(s.post("/api/v1/admin-keys", first, "{\"apiKey\":\"short\"}").statusCode()).isEqualTo(422);
      assertThat(s.get("/api/v1/me", TestService.DEMO_KEY).statusCode()).isEqualTo(200);

      JsonArray keys = s.json(s.get("/api/v1/admin-keys", first)).getJsonArray("keys");
      assertThat(keys).hasSize(1);
      assertThat(keys.getJsonObject(0).getString("fingerprint")).isEqualTo(TenantStore.fingerprint(first));
      assertThat(keys.getJsonObject(0).getBoolean("current")).isTrue();
      assertThat(keys.getJsonObject(0).getValue("revokedAt")).as("not revoked").isNull();
      assertThat(keys.getJsonObject(0).getLong("createdAt")).isPositive();
      assertThat(keys.encode()).doesNotContain(first).doesNotContain(TenantStore.hashKey(first));

      // the only key cannot be revoked
      var last = s.delete("/api/v1/admin-keys/" + TenantStore.fingerprint(first), first);
      assertThat(last.statusCode()).isEqualTo(409);
      assertThat(s.json(last).getString("type")).endsWith("/last-admin-key");
      assertThat(s.get("/api/v1/admin-keys", first).statusCode()).isEqualTo(200);

      var added = s.post("/api/v1/admin-keys", first, "{\"apiKey\":\"" + SECOND + "\"}");
      assertThat(added.statusCode()).isEqualTo(201);
      assertThat(s.json(added).getString("fingerprint")).isEqualTo(TenantStore.fingerprint(SECOND));
      assertThat(s.post("/api/v1/admin-keys", first, "{\"apiKey\":\"" + SECOND + "\"}").statusCode()).as("sent again").isEqualTo(200);
      var generated = s.post("/api/v1/admin-keys", SECOND, "");
      assertThat(generated.statusCode()).isEqualTo(201);
      third = s.json(generated).getString("apiKey");
      assertThat(third).startsWith("adm_");
      assertThat(s.get("/api/v1/admin-keys", third).statusCode()).isEqualTo(200);
      // a tenant cannot take an admin key as its own
      assertThat(s.post("/api/v1/tenants", first, new JsonObject().put("name", "sneaky").put("apiKey", third).encode()).statusCode())
          .isEqualTo(409);

      // bad and unknown fingerprints change nothing
      assertThat(s.delete("/api/v1/admin-keys/sha256:xyz", SECOND).statusCode()).isEqualTo(422);
      assertThat(s.delete("/api/v1/admin-keys/sha256:0000000000000000", SECOND).statusCode()).isEqualTo(404);

      // the second revokes the first (given without its prefix, in capitals): refused at once
      String fp = TenantStore.fingerprint(first).substring("sha256:".length()).toUpperCase(java.util.Locale.ROOT);
      var revoked = s.delete("/api/v1/admin-keys/" + fp, SECOND);
      assertThat(revoked.statusCode()).as(revoked.body()).isEqualTo(200);
      assertThat(s.json(revoked).getBoolean("revoked")).isTrue();
      assertThat(s.get("/api/v1/admin-keys", first).statusCode()).isEqualTo(403);
      assertThat(s.post("/api/v1/tenants", first, "{\"name\":\"x\"}").statusCode()).isEqualTo(403);
      assertThat(s.delete("/api/v1/admin-keys/" + fp, SECOND).statusCode()).as("again").isEqualTo(200);
      assertThat(s.post("/api/v1/admin-keys", SECOND, "{\"apiKey\":\"" + first + "\"}").statusCode())
          .as("a revoked key stays revoked").isEqualTo(409);
      JsonArray after = s.json(s.get("/api/v1/admin-keys", SECOND)).getJsonArray("keys");
      assertThat(after).hasSize(3);
      JsonObject firstRow = after.stream().map(JsonObject.class::cast)
          .filter(k -> k.getString("fingerprint").equals(TenantStore.fingerprint(first))).findFirst().orElseThrow();
      assertThat(firstRow.getLong("revokedAt")).isPositive();
      assertThat(after.stream().map(JsonObject.class::cast).filter(k -> k.getValue("revokedAt") == null)).as("the two not revoked")
          .hasSize(2);
      // the third revokes the second; the third is then the last
      assertThat(s.delete("/api/v1/admin-keys/" + TenantStore.fingerprint(SECOND), third).statusCode()).isEqualTo(200);
      assertThat(s.delete("/api/v1/admin-keys/" + TenantStore.fingerprint(third), third).statusCode()).isEqualTo(409);
      assertThat(s.get("/api/v1/admin-keys", third).statusCode()).isEqualTo(200);
    }
    // a start that names the revoked key is refused; one that names a current key starts
    assertThatThrownBy(() -> TestService.start(dir, args))
        .hasStackTraceContaining("ANNEAL_ADMIN_KEY names an admin key that was revoked (" + TenantStore.fingerprint(first) + ")");
    try (TestService s = TestService.start(dir, null, Map.of("ANNEAL_ADMIN_KEY", ""), args)) {
      assertThat(s.get("/api/v1/admin-keys", first).statusCode()).isEqualTo(403);
      assertThat(s.get("/api/v1/admin-keys", SECOND).statusCode()).isEqualTo(403);
      assertThat(s.get("/api/v1/admin-keys", third).statusCode()).isEqualTo(200);
    }
  }
}
