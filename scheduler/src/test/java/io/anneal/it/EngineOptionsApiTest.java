package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bme-spec 16.4 options through the API: exact-USD top-ups ({@code {"usd": ...}}) and the mint
 * queue depth (429 with Retry-After, nothing written). Mint epochs are long here (100 ticks of 1 s),
 * so queued top-ups stay queued while the test looks.
 */
class EngineOptionsApiTest {
  @TempDir Path dir;

  @Test
  void anExactUsdTopUpBuysAtLeastThatManyDollarsAndAFullMintQueueAnswers429() throws Exception {
    Map<String, String> env = Map.of("ANNEAL_BME_EXACT_USD", "true", "ANNEAL_BME_MAX_QUEUE_DEPTH", "1");
    try (TestService s = TestService.start(dir, null, env, "--tick-seconds", "1", "--min-epoch-ticks", "100",
        "--oracle-price-akt", "0.4823")) {
      String tenant = s.json(s.post("/api/v1/tenants", TestService.ADMIN_KEY, "{\"name\":\"usd\"}")).getString("id");
      String deposits = "/api/v1/tenants/" + tenant + "/deposits";

      HttpResponse<String> r = s.post(deposits, TestService.ADMIN_KEY, "{\"usd\":\"25\",\"reference\":\"u1\"}");
      assertThat(r.statusCode()).as(r.body()).isEqualTo(202);
      long expected = new BigDecimal("25000000").divide(new BigDecimal("0.4823"), 0, RoundingMode.CEILING).longValueExact();
      assertThat(s.json(r).getLong("depositedUakt")).as("ceil(25 USD / 0.4823) in uakt").isEqualTo(expected);
      // the estimate is of the ACT credited after the 0.25 % spread: at least 25 USD of gross mint
      assertThat(s.json(r).getLong("estimatedCreditUact")).isGreaterThanOrEqualTo(25_000_000L * 9975 / 10000);

      // the mint queue holds 1: the next top-up is refused, and nothing of it is recorded
      JsonObject before = s.json(s.get("/api/v1/tenants/" + tenant + "/balance", TestService.ADMIN_KEY));
      HttpResponse<String> full = s.post(deposits, TestService.ADMIN_KEY, "{\"akt\":\"100\",\"reference\":\"u2\"}");
      assertThat(full.statusCode()).as(full.body()).isEqualTo(429);
      assertThat(full.headers().firstValue("Retry-After")).hasValue("100");
      assertThat(s.json(full).getString("detail")).startsWith("QUEUE_FULL");
      assertThat(s.get(deposits + "/u2", TestService.ADMIN_KEY).statusCode()).isEqualTo(404);
      assertThat(s.json(s.get("/api/v1/tenants/" + tenant + "/balance", TestService.ADMIN_KEY))).isEqualTo(before);

      // repeating the first one is still answered (idempotent), not refused as a new top-up
      HttpResponse<String> again = s.post(deposits, TestService.ADMIN_KEY, "{\"usd\":\"25\",\"reference\":\"u1\"}");
      assertThat(again.statusCode()).as(again.body()).isEqualTo(200);

      HttpResponse<String> both = s.post(deposits, TestService.ADMIN_KEY, "{\"usd\":\"1\",\"akt\":\"1\"}");
      assertThat(both.statusCode()).isEqualTo(422);
      assertThat(s.json(both).getString("detail")).contains("either akt or usd");
    }
  }

  @Test
  void withoutTheOptionAUsdTopUpIsRefusedAndSaysWhy() throws Exception {
    try (TestService s = TestService.start(dir)) {
      String tenant = s.json(s.post("/api/v1/tenants", TestService.ADMIN_KEY, "{\"name\":\"plain\"}")).getString("id");
      HttpResponse<String> r = s.post("/api/v1/tenants/" + tenant + "/deposits", TestService.ADMIN_KEY, "{\"usd\":\"25\"}");
      assertThat(r.statusCode()).isEqualTo(422);
      assertThat(s.json(r).getString("detail")).contains("bme.exactUsd");
    }
  }
}
