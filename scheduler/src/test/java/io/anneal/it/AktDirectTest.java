package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bme-spec 16.5 end to end: when the AKT price falls until the vault covers less than 90 % of the ACT
 * outstanding (HALT_CR), top-ups into ACT are refused, and a tenant without ACT pays a job from an
 * AKT-direct deposit; the provider is paid in AKT at the admission price; a tenant with ACT still pays
 * in ACT.
 */
class AktDirectTest {
  @TempDir Path dir;
  @TempDir Path feed;

  private static String sleepJob(int ms) {
    return new JsonObject().put("kind", "sleep").put("gpus", 1).put("maxSeconds", 60)
        .put("params", new JsonObject().put("ms", ms)).encode();
  }

  @Test
  void whileHaltedATenantWithoutActPaysAJobFromItsAktDepositAndTheProviderIsPaidInAkt() throws Exception {
    Path price = feed.resolve("akt-usd.txt");
    java.util.concurrent.atomic.AtomicReference<String> current = new java.util.concurrent.atomic.AtomicReference<>("0.5");
    java.util.concurrent.ScheduledExecutorService publisher = java.util.concurrent.Executors.newSingleThreadScheduledExecutor();
    TestService.publishPrice(price, "0.5");
    publisher.scheduleAtFixedRate(() -> {
      try {
        TestService.publishPrice(price, current.get());
      } catch (java.io.IOException ignored) {
        // the next round writes again
      }
    }, 0, 300, java.util.concurrent.TimeUnit.MILLISECONDS);
    // a 1 AKT vault seed: the vault holds 101 AKT against the demo tenant's 50 ACT, CR = 2.02 x price
    try (TestService s = TestService.start(dir, null, Map.of("ANNEAL_VAULT_SEED_AKT", "1"), "--oracle-source", "file",
        "--oracle-file", price.toString(), "--oracle-poll-seconds", "1", "--tick-seconds", "1", "--min-epoch-ticks", "1",
        "--payout-min-act", "0", "--node-id", "node-akt")) {
      assertThat(s.json(s.get("/api/v1/supply", null)).getString("status")).isEqualTo("HEALTHY");
      JsonObject created = s.json(s.post("/api/v1/tenants", TestService.ADMIN_KEY, "{\"name\":\"no-act\"}"));
      String poor = created.getString("id");
      String poorKey = created.getString("apiKey");
      String deposits = "/api/v1/tenants/" + poor + "/deposits";

      // not halted: AKT-direct deposits are not taken, and the tenant cannot submit
      var early = s.post(deposits, TestService.ADMIN_KEY, "{\"akt\":\"10\",\"direct\":true}");
      assertThat(early.statusCode()).isEqualTo(409);
      assertThat(s.json(early).getString("detail")).contains("AKT_DIRECT_UNAVAILABLE");
      assertThat(s.post("/api/v1/jobs", poorKey, sleepJob(100)).statusCode()).isEqualTo(402);

      // the price falls to 0.4: CR 0.8 < 0.9, HALT_CR
      current.set("0.4");
      s.await(Duration.ofSeconds(20), () -> "HALT_CR".equals(s.json(s.get("/api/v1/supply", null)).getString("status")));
      s.await(Duration.ofSeconds(15), () -> "0.400000000000000000".equals(
          s.json(s.get("/api/v1/supply", null)).getJsonObject("oracle").getString("priceAkt")));
      assertThat(s.post(deposits, TestService.ADMIN_KEY, "{\"akt\":\"10\"}").statusCode()).isEqualTo(503);
      var noDeposit = s.post("/api/v1/jobs", poorKey, sleepJob(100));
      assertThat(noDeposit.statusCode()).isEqualTo(402);
      assertThat(s.json(noDeposit).getString("detail")).contains("\"direct\": true");

      var direct = s.post(deposits, TestService.ADMIN_KEY, "{\"akt\":\"10\",\"direct\":true,\"reference\":\"halt-1\"}");
      assertThat(direct.statusCode()).isEqualTo(201);
      assertThat(s.json(direct).getString("state")).isEqualTo("DIRECT");
      assertThat(s.post(deposits, TestService.ADMIN_KEY, "{\"akt\":\"10\",\"direct\":true,\"reference\":\"halt-1\"}")
          .statusCode()).as("the same reference again").isEqualTo(200);
      assertThat(s.json(s.get("/api/v1/me", poorKey)).getJsonObject("balance").getLong("uakt")).isEqualTo(10_000_000L);

      var submitted = s.post("/api/v1/jobs", poorKey, sleepJob(300));
      assertThat(submitted.statusCode()).isEqualTo(202);
      JsonObject job = s.json(submitted);
      assertThat(job.getString("payment")).isEqualTo("akt-direct");
      long maxCost = job.getLong("maxCostUact");
      long held = job.getLong("escrowUakt");
      assertThat(held).isEqualTo((maxCost * 10 + 3) / 4); // ceil(maxCost / 0.4)
      assertThat(s.json(s.get("/api/v1/me", poorKey)).getJsonObject("balance").getLong("escrowUakt")).isEqualTo(held);

      String jobId = job.getString("id");
      s.await(Duration.ofSeconds(30), () -> s.json(s.get("/api/v1/receipts/" + jobId, poorKey)).getBoolean("settled"));
      JsonObject settlement = s.json(s.get("/api/v1/receipts/" + jobId, poorKey)).getJsonObject("settlement");
      long paid = settlement.getLong("paidUakt");
      assertThat(paid).isPositive().isLessThanOrEqualTo(held);
      assertThat(settlement.getLong("chargeUact")).isZero();
      JsonObject balance = s.json(s.get("/api/v1/me", poorKey)).getJsonObject("balance");
      assertThat(balance.getLong("uakt")).isEqualTo(10_000_000L - paid);
      assertThat(balance.getLong("escrowUakt")).isZero();
      assertThat(balance.getLong("uact")).isZero();
      JsonObject provider = s.json(s.get("/api/v1/providers/node-akt/payouts", TestService.ADMIN_KEY));
      assertThat(provider.getLong("uakt")).isEqualTo(paid);

      // a tenant that has ACT pays in ACT even while halted
      JsonObject withAct = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, sleepJob(100)));
      assertThat(withAct.getString("payment")).isNull();
      assertThat(withAct.getLong("escrowUact")).isPositive();

      // the price recovers: mints are allowed again, and the AKT the tenant deposited directly and no
      // job holds is converted into ACT at the next mint epoch, like a deposit
      current.set("1.5"); // ~10 AKT must mint at least the 10 ACT minimum
      s.await(Duration.ofSeconds(20), () -> "HEALTHY".equals(s.json(s.get("/api/v1/supply", null)).getString("status")));
      long leftover = 10_000_000L - paid;
      s.await(Duration.ofSeconds(30), () -> s.json(s.get("/api/v1/me", poorKey)).getJsonObject("balance").getLong("uact") > 0);
      JsonObject after = s.json(s.get("/api/v1/me", poorKey)).getJsonObject("balance");
      assertThat(after.getLong("uakt")).as("nothing left stranded as AKT").isZero();
      // leftover uakt at a price between 1.0 (the minimum passed) and 1.5, less the 0.25 % spread
      assertThat(after.getLong("uact")).isBetween(10_000_000L * 9975 / 10000, leftover * 15 / 10);
    } finally {
      publisher.shutdownNow();
    }
  }
}
