package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.ledger.SqlLedger;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bme-spec 16.2 in the service: a class's price follows its utilization window by window, a job is
 * charged the price in force when it started (never the later, higher one), prices survive restart.
 */
class PricingTest {
  @TempDir Path dir;

  private static long cpuPrice(TestService s) {
    return s.json(s.get("/api/v1/prices", null)).getJsonObject("classes").getJsonObject("cpu").getLong("uactPerGpuHour");
  }

  @Test
  void busyWindowsRaiseThePriceButARunningJobKeepsThePriceItStartedAt() throws Exception {
    long last;
    try (TestService s = TestService.start(dir, "--cpu-devices", "1", "--price-window-seconds", "1")) {
      var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
          .put("maxSeconds", 60).put("params", new JsonObject().put("ms", 4000)).encode());
      String id = s.json(r).getString("id");
      long quoted = s.json(r).getLong("priceUactPerGpuHour");
      s.await(Duration.ofSeconds(10), () -> "RUNNING".equals(s.job(id).getString("state")));
      // the only GPU is busy: every window is full, and each moves the price up by at most 12.5 %
      s.await(Duration.ofSeconds(10), () -> cpuPrice(s) > quoted);
      long risen = cpuPrice(s);
      assertThat(risen).isLessThanOrEqualTo(Math.round(quoted * Math.pow(1.125, 5)));
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(id).getString("state")));
      JsonObject job = s.job(id);
      JsonObject receipt = s.json(s.get("/api/v1/receipts/" + id, TestService.DEMO_KEY));
      // the canonical receipt: one field per line, deviceNanos is the 9th (after the version line)
      long deviceNanos = Long.parseLong(receipt.getJsonObject("receipt").getString("body").split("\n")[8]);
      long charge = job.getLong("chargeUact");
      assertThat(charge).isPositive();
      assertThat(charge).isLessThanOrEqualTo(SqlLedger.chargeUact(deviceNanos, quoted));
      assertThat(charge).isLessThan(SqlLedger.chargeUact(deviceNanos, risen));
      // idle windows bring it back down
      long peak = cpuPrice(s);
      s.await(Duration.ofSeconds(10), () -> cpuPrice(s) < peak);
      var prices = s.json(s.get("/api/v1/prices", null));
      assertThat(prices.getBoolean("adjust")).isTrue();
      assertThat(prices.getJsonObject("classes").getJsonObject("cpu").getLong("baseUactPerGpuHour")).isEqualTo(100_000L);
      last = cpuPrice(s);
    }
    // the price history is kept: with adjustment off after a restart the last price stays in force
    try (TestService s = TestService.start(dir, "--cpu-devices", "1", "--price-adjust", "false")) {
      assertThat(cpuPrice(s)).isBetween(Math.round(last * 0.875) - 1, Math.round(last / 0.875) + 1);
      assertThat(s.json(s.get("/api/v1/prices", null)).getBoolean("adjust")).isFalse();
    }
  }
}
