package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A stale oracle halts the BME (HALT_ORACLE: deposits refused), a fresh price brings it back. */
class OracleBreakerTest {
  @TempDir Path dir;
  @TempDir Path feed;

  @Test
  void aStaleOracleHaltsMintsAndAFreshPriceResumesThem() throws Exception {
    Path price = feed.resolve("akt-usd.txt");
    TestService.publishPrice(price, "0.5");
    // a price publisher that keeps the file fresh until it stops
    java.util.concurrent.atomic.AtomicBoolean publishing = new java.util.concurrent.atomic.AtomicBoolean(true);
    java.util.concurrent.atomic.AtomicReference<String> current = new java.util.concurrent.atomic.AtomicReference<>("0.5");
    java.util.concurrent.ScheduledExecutorService publisher = java.util.concurrent.Executors.newSingleThreadScheduledExecutor();
    publisher.scheduleAtFixedRate(() -> {
      try {
        if (publishing.get()) TestService.publishPrice(price, current.get());
      } catch (java.io.IOException ignored) {
        // the next round writes again
      }
    }, 0, 300, java.util.concurrent.TimeUnit.MILLISECONDS);
    try (TestService s = TestService.start(dir, "--oracle-source", "file", "--oracle-file", price.toString(),
        "--oracle-poll-seconds", "1", "--oracle-max-staleness-seconds", "2", "--tick-seconds", "1",
        "--min-epoch-ticks", "1")) {
      JsonObject supply = s.json(s.get("/api/v1/supply", null));
      assertThat(supply.getJsonObject("oracle").getBoolean("healthy")).isTrue();
      assertThat(supply.getJsonObject("oracle").getString("priceAkt")).isEqualTo("0.500000000000000000");
      assertThat(supply.getString("status")).isEqualTo("HEALTHY");
      String tenant = s.json(s.get("/api/v1/me", TestService.DEMO_KEY)).getString("id");

      // the publisher stops: the source goes stale, the breaker halts on the next tick
      publishing.set(false);
      s.await(Duration.ofSeconds(15), () -> "HALT_ORACLE".equals(s.json(s.get("/api/v1/supply", null)).getString("status")));
      JsonObject halted = s.json(s.get("/api/v1/supply", null));
      assertThat(halted.getJsonObject("oracle").getBoolean("healthy")).isFalse();
      assertThat(halted.getJsonObject("oracle").getString("failure")).isEqualTo("ALL_SOURCES_STALE");
      assertThat(halted.getValue("collateralRatio")).isNull();
      var refused = s.post("/api/v1/tenants/" + tenant + "/deposits", TestService.ADMIN_KEY, "{\"akt\":\"100\"}");
      assertThat(refused.statusCode()).isEqualTo(503);
      assertThat(s.json(refused).getString("type")).endsWith("/bme-refused");
      s.await(Duration.ofSeconds(5), () -> {
        String m = s.get("/metrics", null).body(); // gauges refresh every second
        return m.contains("anneal_bme_oracle_healthy 0.0") && m.contains("anneal_bme_breaker_status 4.0");
      });

      // fresh prices again: healthy, the breaker resets; once the 5 s TWAP window holds only the new
      // price, deposits mint at exactly that price
      current.set("0.8");
      publishing.set(true);
      s.await(Duration.ofSeconds(15), () -> "HEALTHY".equals(s.json(s.get("/api/v1/supply", null)).getString("status")));
      s.await(Duration.ofSeconds(15), () -> "0.800000000000000000".equals(
          s.json(s.get("/api/v1/supply", null)).getJsonObject("oracle").getString("priceAkt")));
      // the API reads the oracle on its own poll, up to a second after billing: a deposit refused in that
      // second changes nothing (same reference again)
      s.await(Duration.ofSeconds(5), () -> s.post("/api/v1/tenants/" + tenant + "/deposits", TestService.ADMIN_KEY,
          "{\"akt\":\"100\",\"reference\":\"after-halt\"}").statusCode() == 202);
      String status = "/api/v1/tenants/" + tenant + "/deposits/after-halt";
      s.await(Duration.ofSeconds(10), () -> "EXECUTED".equals(s.json(s.get(status, TestService.ADMIN_KEY)).getString("state")));
      assertThat(s.json(s.get(status, TestService.ADMIN_KEY)).getLong("mintedUact")).isEqualTo(80_000_000L);
    } finally {
      publisher.shutdownNow();
    }
  }
}
