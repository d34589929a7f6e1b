package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Provider accounts (ADR 32): an admin gives the operator of some nodes a key of its own; with it the
 * provider reads what its nodes earned (statement, payouts) and asks for their payouts — for its own
 * nodes only — and nothing a tenant or an admin does. Bad requests change nothing and say why.
 */
class ProviderAccountsTest {
  @TempDir Path dir;

  private static final String PK = "provider-key-0123456789";

  @Test
  void aProviderAccountReadsAndPaysOutItsOwnNodesAndNothingElse() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      String node = s.service.nodeId();
      String done = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
          .put("maxSeconds", 60).put("params", new JsonObject().put("ms", 200)).encode())).getString("id");
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(done).getString("state")));
      long charge = s.job(done).getLong("chargeUact");

      // only an admin makes one; bad requests are refused and make nothing
      String accounts = "/api/v1/provider-accounts";
      String body = new JsonObject().put("name", "acme-gpu").put("nodes", new JsonArray().add(node)).put("apiKey", PK).encode();
      assertThat(s.post(accounts, null, body).statusCode()).isEqualTo(401);
      assertThat(s.post(accounts, TestService.DEMO_KEY, body).statusCode()).isEqualTo(403);
      for (String bad : List.of("{\"nodes\":[]}", "{\"name\":\"a b\"}", "{\"name\":\"x\",\"nodes\":\"n1\"}",
          "{\"name\":\"x\",\"nodes\":[\"a/b\"]}", "{\"name\":\"x\",\"apiKey\":\"short\"}")) {
        var r = s.post(accounts, TestService.ADMIN_KEY, bad);
        assertThat(r.statusCode()).as(bad).isEqualTo(422);
        assertThat(s.json(r).getString("type")).as(bad).endsWith("invalid-provider-account");
      }
      var unknown = s.post(accounts, TestService.ADMIN_KEY, "{\"name\":\"x\",\"color\":1}");
      assertThat(unknown.statusCode()).isEqualTo(422);
      assertThat(s.json(unknown).getString("type")).endsWith("unknown-field");
      assertThat(s.post(accounts, TestService.ADMIN_KEY, new JsonObject().put("name", "thief").put("apiKey", TestService.DEMO_KEY)
          .encode()).statusCode()).as("a tenant's key").isEqualTo(409);
      assertThat(s.json(s.get(accounts, TestService.ADMIN_KEY)).getJsonArray("accounts")).isEmpty();

      var created = s.post(accounts, TestService.ADMIN_KEY, body);
      assertThat(created.statusCode()).isEqualTo(201);
      String id = s.json(created).getString("id");
      assertThat(id).startsWith("pa_");
      assertThat(s.json(created).getString("apiKey")).isEqualTo(PK);
      assertThat(s.post(accounts, TestService.ADMIN_KEY, body).statusCode()).as("the same name").isEqualTo(409);
      var taken = s.post(accounts, TestService.ADMIN_KEY, new JsonObject().put("name", "other").put("nodes", new JsonArray().add(node))
          .encode());
      assertThat(taken.statusCode()).as("a node of another account").isEqualTo(409);
      assertThat(s.json(taken).getString("detail")).contains(node, id);
      String other = s.json(s.post(accounts, TestService.ADMIN_KEY, "{\"name\":\"other\",\"nodes\":[\"node-elsewhere\"]}"))
          .getString("apiKey");
      assertThat(other).startsWith("pk_");

      // the provider's key: its account and its node's balances, statement and payouts
      long asked = System.currentTimeMillis();
      JsonObject me = s.json(s.get(accounts + "/me", PK));
      assertThat(me.getString("id")).isEqualTo(id);
      assertThat(me.getLong("keyLastUsedAtMs")).as("this request").isBetween(asked, System.currentTimeMillis());
      JsonObject n = me.getJsonArray("nodes").getJsonObject(0);
      assertThat(n.getString("nodeId")).isEqualTo(node);
      assertThat(n.getLong("uact")).isEqualTo(charge);
      assertThat(n.getBoolean("known")).isTrue();
      JsonObject statement = s.json(s.get(n.getString("statement") + "?from=2020-01-01", PK));
      assertThat(statement.getJsonArray("entries").getJsonObject(0).getJsonObject("change").getLong("uact")).isEqualTo(charge);
      assertThat(s.get(n.getString("payouts"), PK).statusCode()).isEqualTo(200);
      var payout = s.post(n.getString("payouts"), PK, "{\"reference\":\"p-1\"}");
      assertThat(payout.statusCode()).isEqualTo(202);
      assertThat(s.json(payout).getLong("uact")).isEqualTo(charge);
      assertThat(s.json(s.get(accounts + "/me", PK)).getJsonArray("nodes").getJsonObject(0).getLong("uact")).isZero();

      // not another's node, not a tenant's or an admin's endpoints; others' keys not its endpoints
      assertThat(s.get("/api/v1/providers/node-elsewhere/payouts", PK).statusCode()).isEqualTo(403);
      assertThat(s.get("/api/v1/providers/" + node + "/statement", other).statusCode()).isEqualTo(403);
      assertThat(s.post("/api/v1/providers/" + node + "/payouts", other, "{}").statusCode()).isEqualTo(403);
      assertThat(s.get("/api/v1/providers/" + node + "/statement", TestService.DEMO_KEY).statusCode()).isEqualTo(403);
      assertThat(s.get("/api/v1/me", PK).statusCode()).isEqualTo(401);
      assertThat(s.get("/api/v1/jobs", PK).statusCode()).isEqualTo(401);
      assertThat(s.post("/api/v1/jobs", PK, "{}").statusCode()).isEqualTo(401);
      assertThat(s.get("/api/v1/tenants", PK).statusCode()).isEqualTo(403);
      assertThat(s.get(accounts, PK).statusCode()).isEqualTo(403);
      assertThat(s.get(accounts + "/" + s.json(s.get(accounts + "/me", other)).getString("id"), PK).statusCode()).isEqualTo(403);
      assertThat(s.get(accounts + "/me", TestService.DEMO_KEY).statusCode()).as("a tenant's key").isEqualTo(403);
      assertThat(s.get(accounts + "/me", "nobody-0123456789abc").statusCode()).as("no one's key").isEqualTo(401);
      assertThat(s.put(accounts + "/" + id + "/nodes", PK, "{\"nodes\":[\"x\"]}").statusCode()).as("only the admin").isEqualTo(403);

      // the admin lists them (when each key was last used) and moves the node off the account
      JsonArray listed = s.json(s.get(accounts, TestService.ADMIN_KEY)).getJsonArray("accounts");
      assertThat(listed.stream().map(o -> ((JsonObject) o).getString("name")).toList()).containsExactly("acme-gpu", "other");
      assertThat(listed.getJsonObject(0).getLong("keyLastUsedAtMs")).isNotNull();
      assertThat(s.json(s.get(accounts + "/" + id, TestService.ADMIN_KEY)).getJsonArray("nodes").getJsonObject(0)
          .getString("nodeId")).isEqualTo(node);
      assertThat(s.put(accounts + "/" + id + "/nodes", TestService.ADMIN_KEY, "{\"nodes\":[]}").statusCode()).isEqualTo(200);
      assertThat(s.get("/api/v1/providers/" + node + "/statement", PK).statusCode()).isEqualTo(403);
      assertThat(s.put(accounts + "/pa_nope/nodes", TestService.ADMIN_KEY, "{\"nodes\":[]}").statusCode()).isEqualTo(404);
      assertThat(s.put(accounts + "/" + id + "/nodes", TestService.ADMIN_KEY, "{\"nodes\":[\"node-elsewhere\"]}").statusCode())
          .isEqualTo(409);
      assertThat(s.json(s.get(accounts + "/me", PK)).getJsonArray("nodes")).as("the refused change changed nothing").isEmpty();
      assertThat(s.put(accounts + "/" + id + "/nodes", TestService.ADMIN_KEY, "{\"nodes\":[\"" + node + "\"]}").statusCode())
          .isEqualTo(200);
      assertThat(s.get("/api/v1/providers/" + node + "/statement", PK).statusCode()).isEqualTo(200);

      // the account replaces its key: the old one is refused at once
      var replaced = s.post(accounts + "/" + id + "/keys", PK, "{}");
      assertThat(replaced.statusCode()).isEqualTo(201);
      String newKey = s.json(replaced).getString("apiKey");
      assertThat(newKey).startsWith("pk_");
      assertThat(s.get(accounts + "/me", PK).statusCode()).isEqualTo(401);
      assertThat(s.get("/api/v1/providers/" + node + "/statement", PK).statusCode()).isEqualTo(403);
      assertThat(s.json(s.get(accounts + "/me", newKey)).getString("id")).isEqualTo(id);
      assertThat(s.post(accounts + "/" + id + "/keys", newKey, "{\"apiKey\":\"" + other + "\"}").statusCode())
          .as("another account's key").isEqualTo(409);
      assertThat(s.post("/api/v1/admin-keys", TestService.ADMIN_KEY, "{\"apiKey\":\"" + newKey + "\"}").statusCode())
          .as("a provider's key cannot become an admin's").isEqualTo(409);
    }
  }
  /**
   * A provider account's webhook (ADR 32): told when a payout of its node executes, signed as every
   * delivery is; its events are payouts only, and a tenant cannot ask for them.
   */
  @Test
  void aProviderAccountsWebhookIsToldWhenItsNodeIsPaidOut() throws Exception {
    java.util.List<String[]> received = new java.util.concurrent.CopyOnWriteArrayList<>();
    com.sun.net.httpserver.HttpServer receiver = com.sun.net.httpserver.HttpServer.create(
        new java.net.InetSocketAddress("127.0.0.1", 0), 0);
    receiver.createContext("/", ex -> {
      received.add(new String[] {ex.getRequestHeaders().getFirst(io.anneal.webhook.WebhookSigner.HEADER),
          new String(ex.getRequestBody().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8)});
      ex.sendResponseHeaders(200, -1);
      ex.close();
    });
    receiver.start();
    String url = "http://127.0.0.1:" + receiver.getAddress().getPort() + "/paid";
    try (TestService s = TestService.start(dir, "--tick-seconds", "1", "--min-epoch-ticks", "1", "--node-id", "node-pay")) {
      s.json(s.post("/api/v1/provider-accounts", TestService.ADMIN_KEY,
          new JsonObject().put("name", "acme-gpu").put("nodes", new JsonArray().add("node-pay")).put("apiKey", PK).encode()));
      for (String bad : List.of("[\"*\"]", "[\"job.settled\"]", "[\"payout.executed\",\"epoch.closed\"]", "[]")) {
        var r = s.post("/api/v1/webhooks", PK, "{\"url\":\"" + url + "\",\"events\":" + bad + "}");
        assertThat(r.statusCode()).as(bad).isEqualTo(422);
      }
      assertThat(s.post("/api/v1/webhooks", TestService.DEMO_KEY, "{\"url\":\"" + url + "\",\"events\":[\"payout.executed\"]}")
          .statusCode()).as("a tenant's webhook cannot ask for payouts").isEqualTo(422);
      var made = s.post("/api/v1/webhooks", PK, "{\"url\":\"" + url + "\",\"events\":[\"payout.executed\"]}");
      assertThat(made.statusCode()).isEqualTo(201);
      String hook = s.json(made).getString("id");
      String secret = s.json(made).getString("secret");
      assertThat(s.json(s.get("/api/v1/webhooks", PK)).getJsonArray("webhooks")).hasSize(1);
      assertThat(s.json(s.get("/api/v1/webhooks", TestService.DEMO_KEY)).getJsonArray("webhooks")).isEmpty();
      assertThat(s.get("/api/v1/webhooks/" + hook + "/deliveries", TestService.DEMO_KEY).statusCode()).isEqualTo(404);

      String done = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
          .put("maxSeconds", 60).put("params", new JsonObject().put("ms", 200)).encode())).getString("id");
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(done).getString("state")));
      long charge = s.job(done).getLong("chargeUact");
      long payout = s.json(s.post("/api/v1/providers/node-pay/payouts", PK, "{}")).getLong("id");
      s.await(Duration.ofSeconds(30), () -> !received.isEmpty());
      String[] delivery = received.get(0);
      JsonObject event = new JsonObject(delivery[1]);
      assertThat(event.getString("type")).isEqualTo("payout.executed");
      assertThat(event.getString("id")).isEqualTo("po_" + payout);
      JsonObject data = event.getJsonObject("data");
      assertThat(data.getString("nodeId")).isEqualTo("node-pay");
      assertThat(data.getLong("uact")).isEqualTo(charge);
      assertThat(data.getLong("paidUakt")).isPositive();
      assertThat(data.getString("providerAccountId")).isEqualTo(s.json(s.get("/api/v1/provider-accounts/me", PK)).getString("id"));
      assertThat(io.anneal.webhook.WebhookSigner.verify(secret, delivery[0], delivery[1], System.currentTimeMillis() / 1000, 300))
          .as("signed with the webhook's secret").isTrue();
      s.await(Duration.ofSeconds(10), () -> s.json(s.get("/api/v1/webhooks/" + hook + "/deliveries", PK)).getJsonArray("deliveries")
          .stream().anyMatch(d -> "DELIVERED".equals(((JsonObject) d).getString("state"))));
      assertThat(s.delete("/api/v1/webhooks/" + hook, PK).statusCode()).isEqualTo(204);
      assertThat(received).hasSize(1);
    } finally {
      receiver.stop(0);
    }
  }
}
