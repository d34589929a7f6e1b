package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Closed epochs and their weekly sums (bme-spec 16.1) through the API; epochs with only BME flows close too. */
class EpochsApiTest {
  @TempDir Path dir;

  @Test
  void closedEpochsListTheirTotalsAndTheWeekViewSumsThem() throws Exception {
    try (TestService s = TestService.start(dir, "--epoch-seconds", "1", "--tick-seconds", "1", "--min-epoch-ticks", "1",
        "--payout-min-act", "0.000001")) {
      String job = s.json(s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
          .put("maxSeconds", 30).put("params", new JsonObject().put("ms", 200)).encode())).getString("id");
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(job).getString("state")));
      // the provider's ACT is paid out in AKT at a redemption epoch; wait until epochs hold a settlement, the
      // genesis mint (AKT in) and the payout (AKT out)
      s.await(Duration.ofSeconds(30), () -> {
        JsonArray e = s.json(s.get("/api/v1/epochs?limit=1000", null)).getJsonArray("epochs");
        long receipts = 0, in = 0, out = 0;
        for (Object o : e) {
          receipts += ((JsonObject) o).getLong("receipts");
          in += ((JsonObject) o).getLong("aktInUakt");
          out += ((JsonObject) o).getLong("aktOutUakt");
        }
        return receipts >= 1 && in > 0 && out > 0;
      });
      JsonArray epochs = s.json(s.get("/api/v1/epochs?limit=1000", null)).getJsonArray("epochs");
      long receipts = 0, charged = 0, minted = 0, burned = 0, in = 0, out = 0, fees = 0;
      long previous = Long.MAX_VALUE;
      for (Object o : epochs) {
        JsonObject e = (JsonObject) o;
        assertThat(e.getLong("epoch")).as("newest first").isLessThan(previous);
        previous = e.getLong("epoch");
        assertThat(e.getString("merkleRoot")).hasSize(64);
        receipts += e.getLong("receipts");
        charged += e.getLong("chargedUact");
        minted += e.getLong("actMintedUact");
        burned += e.getLong("actBurnedUact");
        in += e.getLong("aktInUakt");
        out += e.getLong("aktOutUakt");
        fees += e.getLong("feesUact");
      }
      // the demo tenant's 100 AKT genesis mint: 0.25 % of it is the fee
      assertThat(in).isEqualTo(100_000_000L);
      assertThat(minted).isPositive();
      assertThat(fees).isEqualTo(minted / 400);
      assertThat(burned).as("the payout burned what the job was charged").isEqualTo(charged);

      JsonArray weeks = s.json(s.get("/api/v1/epochs?view=week&weeks=2", null)).getJsonArray("weeks");
      long weekReceipts = 0, weekIn = 0, weekOut = 0;
      for (Object o : weeks) {
        JsonObject w = (JsonObject) o;
        assertThat(w.getString("week")).matches("\\d{4}-W\\d{2}");
        weekReceipts += w.getLong("receipts");
        weekIn += w.getLong("aktInUakt");
        weekOut += w.getLong("aktOutUakt");
        assertThat(w.getLong("netBurnUakt")).isEqualTo(w.getLong("aktInUakt") - w.getLong("aktOutUakt"));
      }
      assertThat(weekReceipts).isEqualTo(receipts);
      assertThat(weekIn).isEqualTo(in);
      assertThat(weekOut).isEqualTo(out);
      JsonObject thisWeek = weeks.getJsonObject(0);
      if (thisWeek.getLong("aktOutUakt") > 0) assertThat(thisWeek.getString("burnMintRatio")).isNotNull();

      assertThat(s.get("/api/v1/epochs?view=month", null).statusCode()).isEqualTo(422);
      assertThat(s.get("/api/v1/epochs?limit=0", null).statusCode()).isEqualTo(422);
      assertThat(s.get("/api/v1/epochs?view=week&weeks=x", null).statusCode()).isEqualTo(422);
    }
  }
}
