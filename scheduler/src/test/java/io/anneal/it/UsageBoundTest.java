package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.BillingAddresses;
import io.anneal.billing.ReceiptJson;
import io.anneal.billing.receipt.NodeKeys;
import io.anneal.billing.receipt.Receipt;
import io.anneal.billing.receipt.ReceiptSigner;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node that claims more GPU time than the job's GPUs had since it was placed is billed the bound,
 * and tenants, auditors and operators see it: the receipts API shows what was billed beside the
 * signed claim, and /metrics counts it (ADR 3).
 */
class UsageBoundTest {
  @TempDir Path dir;

  @Test
  void anOverstatedReceiptIsBilledTheBoundAndShowsItInTheReceiptsApiAndMetrics() throws Exception {
    try (TestService s = TestService.start(dir, "--cpu-devices", "1")) {
      String job = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
          .put("maxSeconds", 3600).put("params", new JsonObject().put("ms", 3000)).encode())).getString("id");
      s.await(Duration.ofSeconds(10), () -> s.job(job).getString("state").equals("RUNNING"));
      String tenant = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getString("id");
      JsonObject placed = s.job(job);
      // the node's own key signs a receipt for the job it runs, claiming an hour of GPU time a few
      // seconds after the job was placed
      long now = System.currentTimeMillis();
      Receipt hour = new Receipt(job + "/9", job, tenant, s.service.nodeId(), placed.getString("placedGpuClass"), 1, false,
          3_600_000_000_000L, 3_600_000_000_000L, 0, now - 3_600_000L, now, "SUCCEEDED", "");
      JsonObject reply = s.service.vertx().eventBus()
          .<JsonObject>request(BillingAddresses.RECEIPT, ReceiptJson.encode(
              new ReceiptSigner(NodeKeys.loadOrCreate(dir).getPrivate()).sign(List.of(hour)).get(0)))
          .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).body();
      assertThat(reply.getBoolean("settled")).as(reply.encode()).isTrue();
      long billed = reply.getLong("billedGpuNanos");
      assertThat(billed).isBetween(5_000_000_000L, 60_000_000_000L); // seconds since placement, plus 5 s of slack

      JsonObject r = s.json(s.get("/api/v1/receipts/" + job, TestService.DEMO_KEY));
      assertThat(r.getJsonObject("receipt").getString("body")).contains("3600000000000");
      JsonObject settlement = r.getJsonObject("settlement");
      assertThat(settlement.getLong("billedDeviceNanos")).isEqualTo(billed);
      assertThat(settlement.getLong("chargeUact")).isEqualTo(reply.getLong("chargeUact")).isPositive();
      assertThat(settlement.getLong("chargeUact")).as("billed at most the bound, not the hour claimed")
          .isLessThan(placed.getLong("escrowUact"));
      assertThat(s.get("/metrics", null).body()).contains("anneal_billing_usage_capped_total 1.0");
    }
  }
}
