package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.sim.BmeSimulator;
import io.anneal.billing.sim.Scenario;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code GET /api/v1/scenarios/{id}}: the same run as {@code bme simulate}, behind a key, with clear refusals. */
class ScenariosApiTest {
  @TempDir Path dir;

  @Test
  void aScenarioRunsOverHttpAsTheSimulatorRunsIt() throws Exception {
    try (TestService s = TestService.start(dir)) {
      JsonObject list = s.json(s.get("/api/v1/scenarios", null));
      assertThat(list.getJsonArray("scenarios").stream().map(o -> ((JsonObject) o).getString("id")))
          .containsExactly("steady", "spike10x", "oracle-outage", "price-crash", "provider-exodus");

      var r = s.get("/api/v1/scenarios/spike10x?hours=72&seed=3", TestService.DEMO_KEY);
      assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
      JsonObject run = s.json(r);
      // the same numbers as the simulator itself gives for these parameters
      var direct = new BmeSimulator(new BmeSimulator.Config(Scenario.SPIKE_10X, 72, 3, true, true)).run();
      assertThat(run.getJsonObject("summary")).isEqualTo(JsonObject.mapFrom(direct.summary()));
      JsonArray columns = run.getJsonArray("columns");
      JsonArray rows = run.getJsonArray("rows");
      assertThat(rows).hasSize(72);
      String[] csv = direct.csv().split("\n");
      assertThat(String.join(",", columns.stream().map(String::valueOf).toList())).isEqualTo(csv[0]);
      int burned = columns.getList().indexOf("akt_burned");
      int breaker = columns.getList().indexOf("breaker");
      for (int h = 0; h < 72; h++) {
        assertThat(new java.math.BigDecimal(String.valueOf(rows.getJsonArray(h).getValue(burned))))
            .isEqualByComparingTo(csv[h + 1].split(",")[burned]);
      }
      assertThat(rows.getJsonArray(50).getString(breaker)).isEqualTo(csv[51].split(",")[breaker]);
      // asked again: the kept run, the same answer
      assertThat(s.json(s.get("/api/v1/scenarios/spike10x?hours=72&seed=3", TestService.DEMO_KEY))).isEqualTo(run);
      assertThat(s.get("/api/v1/scenarios/steady?hours=2", TestService.ADMIN_KEY).statusCode()).isEqualTo(200);

      assertThat(s.get("/api/v1/scenarios/spike10x", null).statusCode()).isEqualTo(401);
      assertThat(s.get("/api/v1/scenarios/spike10x", "not-a-key").statusCode()).isEqualTo(401);
      var unknown = s.get("/api/v1/scenarios/meteor", TestService.DEMO_KEY);
      assertThat(unknown.statusCode()).isEqualTo(404);
      assertThat(unknown.body()).contains("no scenario 'meteor'", "spike10x");
      for (String bad : new String[] {"hours=0", "hours=673", "hours=x", "seed=1.5", "pricing=yes"}) {
        var refused = s.get("/api/v1/scenarios/steady?" + bad, TestService.DEMO_KEY);
        assertThat(refused.statusCode()).as(bad).isEqualTo(422);
        assertThat(s.json(refused).getString("type")).isEqualTo("https://anneal.dev/problems/invalid-query");
      }
    }
  }
}
