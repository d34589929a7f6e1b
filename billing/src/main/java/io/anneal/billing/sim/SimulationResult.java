package io.anneal.billing.sim;

import io.anneal.billing.bme.Dec;
import io.anneal.billing.bme.Status;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/** The rows of one simulation, as CSV, and a summary of what happened before, during and after the event. */
public record SimulationResult(BmeSimulator.Config config, List<SimulationRow> rows) {
  public SimulationResult {
    rows = List.copyOf(rows);
  }

  public String csv() {
    StringBuilder sb = new StringBuilder(SimulationRow.CSV_HEADER).append('\n');
    for (SimulationRow r : rows) sb.append(r.csv()).append('\n');
    return sb.toString();
  }

  /** Rows of hours {@code from}..{@code to}. */
  private List<SimulationRow> phase(int from, int to) {
    return rows.stream().filter(r -> r.hour() >= from && r.hour() <= to).toList();
  }

  private static double mean(List<SimulationRow> rs, ToDoubleFunction<SimulationRow> f) {
    return rs.isEmpty() ? 0 : rs.stream().mapToDouble(f).average().orElse(0);
  }

  private static Map<String, Object> phaseSummary(List<SimulationRow> rs) {
    Map<String, Object> m = new LinkedHashMap<>();
    if (rs.isEmpty()) return m;
    long in = rs.stream().mapToLong(SimulationRow::aktIn).sum();
    long out = rs.stream().mapToLong(SimulationRow::aktOut).sum();
    long fresh = rs.stream().mapToLong(SimulationRow::aktFresh).sum();
    m.put("hours", rs.get(0).hour() + "-" + rs.get(rs.size() - 1).hour());
    m.put("aktBurned", BmeSimulator.whole(in));
    m.put("aktPaidOut", BmeSimulator.whole(out));
    m.put("aktFresh", BmeSimulator.whole(fresh));
    m.put("netBurnAkt", BmeSimulator.whole(in - out));
    m.put("burnMintRatio", out == 0 ? null : round(Dec.fromInt(in).quo(Dec.fromInt(out)).value().doubleValue(), 4));
    m.put("utilization", round(mean(rs, SimulationRow::utilization), 4));
    m.put("servedShareOfDemand", round(rs.stream().mapToDouble(SimulationRow::servedGpuHours).sum()
        / Math.max(1e-9, rs.stream().mapToDouble(SimulationRow::demandGpuHours).sum()), 4));
    m.put("smallProviderActPerGpuHour", round(mean(rs, SimulationRow::smallIncomePerGpuHour) / 1e6, 4));
    m.put("largeProviderActPerGpuHour", round(mean(rs, SimulationRow::largeIncomePerGpuHour) / 1e6, 4));
    m.put("bootstrapPaidAct", BmeSimulator.whole(rs.stream().mapToLong(SimulationRow::fundPaidUact).sum()));
    m.put("topUpsRefused", rs.stream().mapToLong(SimulationRow::topUpsRefused).sum());
    m.put("aktPaidDirect", BmeSimulator.whole(rs.stream().mapToLong(SimulationRow::aktDirectUakt).sum()));
    m.put("priceH100ActPerGpuHourEnd", BmeSimulator.whole(rs.get(rs.size() - 1).priceH100()));
    m.put("smallProvidersEnd", rs.get(rs.size() - 1).smallProviders());
    m.put("largeProvidersEnd", rs.get(rs.size() - 1).largeProviders());
    return m;
  }

  private static double round(double v, int decimals) {
    double f = Math.pow(10, decimals);
    return Math.round(v * f) / f;
  }

  public Map<String, Object> summary() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("scenario", config.scenario().id());
    m.put("hours", config.hours());
    m.put("seed", config.seed());
    m.put("pricing", config.pricing());
    m.put("bootstrapFund", config.bootstrap());
    long warn = rows.stream().mapToLong(SimulationRow::ticksWarning).sum();
    long halt = rows.stream().mapToLong(SimulationRow::ticksHalt).sum();
    long total = (long) config.hours() * BmeSimulator.TICKS_PER_HOUR;
    Map<String, Object> breaker = new LinkedHashMap<>();
    breaker.put("ticksHealthy", total - warn - halt);
    breaker.put("ticksWarning", warn);
    breaker.put("ticksHalted", halt);
    breaker.put("endStatus", rows.get(rows.size() - 1).breaker().name());
    rows.stream().filter(r -> r.breaker() != Status.HEALTHY).findFirst()
        .ifPresent(r -> breaker.put("firstLeftHealthyHour", r.hour()));
    m.put("breaker", breaker);
    Dec minCr = rows.stream().map(SimulationRow::collateralRatio).filter(java.util.Objects::nonNull)
        .min(Dec::compareTo).orElse(null);
    m.put("minCollateralRatio", minCr == null ? null : round(minCr.value().doubleValue(), 4));
    SimulationRow last = rows.get(rows.size() - 1);
    m.put("endCollateralRatio", last.collateralRatio() == null ? null : round(last.collateralRatio().value().doubleValue(), 4));
    m.put("actConservedEveryHour", rows.stream().allMatch(SimulationRow::actConserved));
    int e = Scenario.EVENT_HOUR;
    Map<String, Object> phases = new LinkedHashMap<>();
    phases.put("warmup", phaseSummary(phase(1, e - 24)));
    phases.put("baseline", phaseSummary(phase(e - 23, e)));
    phases.put("event", phaseSummary(phase(e + 1, e + 24)));
    phases.put("after", phaseSummary(phase(e + 25, Integer.MAX_VALUE)));
    phases.put("all", phaseSummary(rows));
    m.put("phases", phases);
    return m;
  }

  /** A short text for people: the summary, one line per phase. */
  public String text() {
    Map<String, Object> s = summary();
    StringBuilder sb = new StringBuilder();
    sb.append("scenario ").append(s.get("scenario")).append(", ").append(s.get("hours")).append(" h, seed ")
        .append(s.get("seed")).append(", pricing ").append(on(config.pricing())).append(", bootstrap fund ")
        .append(on(config.bootstrap())).append('\n');
    sb.append("breaker: ").append(s.get("breaker")).append('\n');
    sb.append("collateral ratio: min ").append(s.get("minCollateralRatio")).append(", end ")
        .append(s.get("endCollateralRatio")).append("; ACT conserved every hour: ").append(s.get("actConservedEveryHour"))
        .append('\n');
    @SuppressWarnings("unchecked")
    Map<String, Object> phases = (Map<String, Object>) s.get("phases");
    phases.forEach((k, v) -> {
      sb.append(k).append(": ");
      // a phase the run is too short for: say so, not "{}"
      if (v instanceof Map<?, ?> phase && phase.isEmpty()) {
        sb.append("not reached in ").append(s.get("hours")).append(" h");
        if (k.equals("event")) sb.append(" (the event starts after hour ").append(Scenario.EVENT_HOUR).append(')');
      } else {
        sb.append(v);
      }
      sb.append('\n');
    });
    return sb.toString();
  }

  private static String on(boolean b) {
    return b ? "on" : "off";
  }
}
