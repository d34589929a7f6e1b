package io.anneal.billing.sim;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.bme.Status;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The scenarios of `bme simulate`: what each must show, checked on its hourly rows. */
class BmeSimulatorTest {
  private static final Map<Scenario, SimulationResult> RUNS = new EnumMap<>(Scenario.class);
  private static final int E = Scenario.EVENT_HOUR;

  private static synchronized SimulationResult run(Scenario s) throws Exception {
    SimulationResult r = RUNS.get(s);
    if (r == null) {
      r = new BmeSimulator(BmeSimulator.Config.of(s)).run();
      RUNS.put(s, r);
    }
    return r;
  }

  private static List<SimulationRow> hours(SimulationResult r, int from, int to) {
    return r.rows().stream().filter(x -> x.hour() >= from && x.hour() <= to).toList();
  }

  private static double ratio(List<SimulationRow> rows) {
    long in = rows.stream().mapToLong(SimulationRow::aktIn).sum();
    long out = rows.stream().mapToLong(SimulationRow::aktOut).sum();
    return in / (double) out;
  }

  @Test
  void everyScenarioConservesActEveryHourAndNeverGoesNegative() throws Exception {
    for (Scenario s : Scenario.values()) {
      SimulationResult r = run(s);
      assertThat(r.rows()).hasSize(96);
      for (SimulationRow row : r.rows()) {
        assertThat(row.actConserved()).as("%s hour %d", s, row.hour()).isTrue();
        assertThat(row.vaultUakt()).isNotNegative();
        assertThat(row.actSupplyUact()).isNotNegative();
        assertThat(row.remintCreditsUakt()).isNotNegative();
        assertThat(row.fundUact()).isNotNegative();
      }
    }
  }

  @Test
  void steadyStaysHealthyAndBalancedAfterWarmUp() throws Exception {
    SimulationResult r = run(Scenario.STEADY);
    assertThat(r.rows()).allMatch(x -> x.breaker() == Status.HEALTHY);
    assertThat(ratio(hours(r, 25, 96))).isBetween(0.9, 1.1);
    assertThat(r.rows()).allMatch(x -> x.aktFresh() == 0);
  }

  @Test
  void theBootstrapFundKeepsSmallProvidersInAtLowUtilization() throws Exception {
    SimulationResult with = run(Scenario.STEADY);
    SimulationResult without = new BmeSimulator(new BmeSimulator.Config(Scenario.STEADY, 48, 1, true, false)).run();
    int smallWith = with.rows().get(47).smallProviders();
    int smallWithout = without.rows().get(47).smallProviders();
    assertThat(smallWith).isEqualTo(400);
    assertThat(smallWithout).isLessThan(smallWith);
    assertThat(with.rows().stream().mapToLong(SimulationRow::fundPaidUact).sum()).isPositive();
    assertThat(without.rows().stream().mapToLong(SimulationRow::fundPaidUact).sum()).isZero();
  }

  @Test
  void aTenfoldSpikeSaturatesTheFleetRaisesPricesBoundedlyAndSunsetsTheFund() throws Exception {
    SimulationResult r = run(Scenario.SPIKE_10X);
    List<SimulationRow> spike = hours(r, E + 2, E + 24);
    assertThat(spike).allMatch(x -> x.utilization() > 0.95);
    assertThat(spike).allMatch(x -> x.fundPaidUact() == 0);
    assertThat(r.rows().get(E + 10).priceH100()).isGreaterThan(2 * r.rows().get(E - 1).priceH100());
    // at most +12.5 % per 10-minute window: six windows an hour
    for (int i = 1; i < r.rows().size(); i++) {
      double step = r.rows().get(i).priceH100() / (double) r.rows().get(i - 1).priceH100();
      assertThat(step).isBetween(Math.pow(0.875, 6) - 1e-9, Math.pow(1.125, 6) + 1e-9);
    }
    assertThat(ratio(hours(r, E + 1, E + 3))).isGreaterThan(2); // tenants burn ahead of providers redeeming
    assertThat(ratio(hours(r, E + 25, E + 30))).isLessThan(1); // then providers redeem what the spike paid
    double baselineCr = r.rows().get(E - 1).collateralRatio().value().doubleValue();
    double spikeCr = r.rows().get(E + 12).collateralRatio().value().doubleValue();
    assertThat(spikeCr).isLessThan(baselineCr);
  }

  @Test
  void anOracleOutageHaltsConversionsAndRecovers() throws Exception {
    SimulationResult r = run(Scenario.ORACLE_OUTAGE);
    for (SimulationRow x : hours(r, E + 1, E + 6)) {
      assertThat(x.aktPrice()).isNull();
      assertThat(x.breaker()).isEqualTo(Status.HALT_ORACLE);
      assertThat(x.aktIn()).isZero();
      assertThat(x.aktOut()).isZero();
    }
    assertThat(hours(r, E + 1, E + 6).stream().mapToLong(SimulationRow::topUpsRefused).sum()).isPositive();
    assertThat(r.rows().get(E + 8).breaker()).isEqualTo(Status.HEALTHY);
    assertThat(hours(r, E + 7, E + 10).stream().mapToLong(SimulationRow::aktOut).sum()).isPositive();
  }

  @Test
  void aPriceCrashTripsTheBreakerStopsMintsAndMintsFreshAktForRedemptions() throws Exception {
    SimulationResult r = run(Scenario.PRICE_CRASH);
    assertThat(hours(r, E + 1, E + 24)).anyMatch(x -> x.breaker() == Status.HALT_CR);
    for (SimulationRow x : r.rows()) {
      if (x.ticksHalt() == BmeSimulator.TICKS_PER_HOUR) assertThat(x.aktIn()).as("hour %d", x.hour()).isZero();
    }
    assertThat(hours(r, E + 1, E + 24).stream().mapToLong(SimulationRow::aktFresh).sum()).isPositive();
    assertThat(hours(r, 1, E).stream().mapToLong(SimulationRow::aktFresh).sum()).isZero();
  }

  @Test
  void aProviderExodusHalvesTheLargeFleetAndRaisesPrices() throws Exception {
    SimulationResult r = run(Scenario.PROVIDER_EXODUS);
    assertThat(r.rows().get(E - 1).largeProviders()).isEqualTo(40);
    assertThat(r.rows().get(E + 1).largeProviders()).isEqualTo(20);
    assertThat(r.rows().get(E + 12).priceH100()).isGreaterThan(r.rows().get(E - 1).priceH100());
    assertThat(r.rows().get(E + 12).gpusOnline()).isLessThan(r.rows().get(E - 1).gpusOnline() * 0.7);
  }

  @Test
  void aRunIsDeterministicPerSeed() throws Exception {
    var cfg = new BmeSimulator.Config(Scenario.SPIKE_10X, 50, 7, true, true);
    assertThat(new BmeSimulator(cfg).run().csv()).isEqualTo(new BmeSimulator(cfg).run().csv());
    var other = new BmeSimulator.Config(Scenario.SPIKE_10X, 50, 8, true, true);
    assertThat(new BmeSimulator(other).run().csv()).isNotEqualTo(new BmeSimulator(cfg).run().csv());
  }

  @Test
  void theCliWritesCsvAndSummaryAndExplainsBadInput(@TempDir Path dir) throws Exception {
    var out = new ByteArrayOutputStream();
    var err = new ByteArrayOutputStream();
    int code = io.anneal.billing.tools.BmeCli.run(new String[] {"simulate", "--scenario", "steady", "--hours", "3",
        "--out", dir.toString()}, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(code).isZero();
    List<String> csv = Files.readAllLines(dir.resolve("steady.csv"));
    assertThat(csv).hasSize(4);
    assertThat(csv.get(0)).startsWith("hour,").contains("burn_mint_ratio", "breaker", "small_provider_act_per_gpu_hour");
    assertThat(Files.readString(dir.resolve("steady-summary.json"))).contains("\"scenario\" : \"steady\"");
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("breaker")
        // 3 hours end before the event: said in words, not as an empty phase
        .contains("event: not reached in 3 h (the event starts after hour 48)").doesNotContain("{}");

    err.reset();
    code = io.anneal.billing.tools.BmeCli.run(new String[] {"simulate", "--scenario", "moon"}, new PrintStream(out),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(code).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("unknown scenario 'moon'", "spike10x");
    err.reset();
    code = io.anneal.billing.tools.BmeCli.run(new String[] {"simulate", "--scenario", "steady", "--hours", "0"},
        new PrintStream(out), new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(code).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("hours must be between");
  }
}
