package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The provider side of the BME, end to end: a job's settlement pays the node in ACT, the next
 * redemption epoch burns that ACT and pays AKT, and the payout names the receipts it redeemed.
 */
class ProviderPayoutTest {
  @TempDir Path dir;

  @Test
  void aProviderIsPaidOutInAktForTheReceiptsItEarnedAndTheSupplyShowsTheBurn() throws Exception {
    try (TestService s = TestService.start(dir, "--tick-seconds", "1", "--min-epoch-ticks", "1", "--payout-min-act",
        "0.000001", "--node-id", "node-pay")) {
      JsonObject before = s.json(s.get("/api/v1/supply", null));
      var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
          .put("maxSeconds", 30).put("params", new JsonObject().put("ms", 300)).encode());
      String jobId = s.json(r).getString("id");
      s.await(Duration.ofSeconds(30), () -> s.json(s.get("/api/v1/receipts/" + jobId, TestService.DEMO_KEY))
          .getBoolean("settled"));
      JsonObject receipt = s.json(s.get("/api/v1/receipts/" + jobId, TestService.DEMO_KEY));
      long charged = receipt.getJsonObject("settlement").getLong("chargeUact");
      assertThat(charged).isPositive();
      String receiptId = receipt.getJsonObject("receipt").getString("receiptId");

      s.await(Duration.ofSeconds(30), () -> {
        JsonArray payouts = s.json(s.get("/api/v1/providers/node-pay/payouts", TestService.ADMIN_KEY)).getJsonArray("payouts");
        return !payouts.isEmpty() && payouts.getJsonObject(payouts.size() - 1).getString("state").equals("EXECUTED");
      });
      JsonObject provider = s.json(s.get("/api/v1/providers/node-pay/payouts", TestService.ADMIN_KEY));
      JsonObject first = provider.getJsonArray("payouts").getJsonObject(provider.getJsonArray("payouts").size() - 1);
      assertThat(first.getLong("uact")).isEqualTo(charged);
      assertThat(first.getJsonArray("receiptIds").getList()).contains(receiptId);
      assertThat(first.getLong("receiptsUact")).as("all of its ACT traces to receipts").isEqualTo(first.getLong("uact"));
      assertThat(first.getLong("paidUakt")).isPositive();
      assertThat(provider.getLong("uakt")).isEqualTo(first.getLong("paidUakt"));
      assertThat(provider.getLong("uact")).isZero();
      // the tenant's side of the same trace: its receipt names the payout that burned the ACT it was charged
      JsonObject payout = s.json(s.get("/api/v1/receipts/" + jobId, TestService.DEMO_KEY)).getJsonArray("runs")
          .getJsonObject(0).getJsonObject("payout");
      assertThat(payout.getLong("id")).isEqualTo(first.getLong("id"));
      assertThat(payout.getString("state")).isEqualTo("EXECUTED");
      assertThat(payout.getLong("paidUakt")).isEqualTo(first.getLong("paidUakt"));
      assertThat(payout.getLong("burnedUact")).as("all of the run's charge, by amount").isEqualTo(charged);
      assertThat(first.getString("attribution")).isEqualTo("amount");

      JsonObject after = s.json(s.get("/api/v1/supply", null));
      assertThat(after.getJsonObject("totalBurned").getLong("uact"))
          .isEqualTo(before.getJsonObject("totalBurned").getLong("uact") + charged);
      assertThat(after.getLong("vaultAkt")).isEqualTo(before.getLong("vaultAkt") - first.getLong("paidUakt"));

      // on demand: nothing left to pay, so an explicit payout is refused and changes nothing
      var refused = s.post("/api/v1/providers/node-pay/payouts", TestService.ADMIN_KEY, "{\"act\":\"1\"}");
      assertThat(refused.statusCode()).isEqualTo(409);
      assertThat(s.json(refused).getString("type")).endsWith("/insufficient-funds");
      assertThat(s.post("/api/v1/providers/node-pay/payouts", TestService.ADMIN_KEY, "{\"act\":\"-1\"}").statusCode())
          .isEqualTo(422);
      assertThat(s.post("/api/v1/providers/node-pay/payouts", TestService.DEMO_KEY, "{\"act\":\"1\"}").statusCode())
          .isIn(401, 403);
    }
  }
}
