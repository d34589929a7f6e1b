package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** bme-spec 16.3 treasury grants: AKT granted to the bootstrap fund is minted into the fund's ACT. */
class TreasuryGrantTest {
  @TempDir Path dir;

  @Test
  void aGrantIsMintedIntoTheBootstrapFundAtTheNextMintEpoch() throws Exception {
    try (TestService s = TestService.start(dir, "--tick-seconds", "1", "--min-epoch-ticks", "1")) {
      long before = s.json(s.get("/api/v1/supply", null)).getLong("bootstrapFundUact");
      String grants = "/api/v1/bootstrap-fund/grants";
      assertThat(s.post(grants, TestService.DEMO_KEY, "{\"akt\":\"100\",\"reference\":\"g1\"}").statusCode()).isEqualTo(403);
      assertThat(s.post(grants, TestService.ADMIN_KEY, "{\"akt\":\"-5\",\"reference\":\"g1\"}").statusCode()).isEqualTo(422);
      assertThat(s.post(grants, TestService.ADMIN_KEY, "{\"akt\":\"100\"}").statusCode()).isEqualTo(422);

      var r = s.post(grants, TestService.ADMIN_KEY, "{\"akt\":\"100\",\"reference\":\"treasury-2026-11\"}");
      assertThat(r.statusCode()).isEqualTo(202);
      JsonObject queued = s.json(r);
      assertThat(queued.getString("state")).isEqualTo("PENDING");
      long expected = queued.getLong("estimatedCreditUact");
      assertThat(s.post(grants, TestService.ADMIN_KEY, "{\"akt\":\"100\",\"reference\":\"treasury-2026-11\"}").statusCode())
          .as("the same grant again").isEqualTo(200);

      s.await(Duration.ofSeconds(20), () -> "EXECUTED".equals(
          s.json(s.get(grants + "/treasury-2026-11", TestService.ADMIN_KEY)).getString("state")));
      JsonObject done = s.json(s.get(grants + "/treasury-2026-11", TestService.ADMIN_KEY));
      assertThat(done.getLong("creditedUact")).isPositive();
      assertThat(done.getLong("fundBalanceUact")).isGreaterThanOrEqualTo(before + done.getLong("creditedUact"));
      assertThat(s.json(s.get("/api/v1/supply", null)).getLong("bootstrapFundUact"))
          .isGreaterThanOrEqualTo(before + done.getLong("creditedUact"));
      assertThat(done.getLong("creditedUact")).isEqualTo(expected); // the fixed oracle price did not move
      assertThat(s.get(grants + "/nope", TestService.ADMIN_KEY).statusCode()).isEqualTo(404);
    }
  }
}
