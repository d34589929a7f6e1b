package io.anneal.api;

import io.anneal.billing.sim.BmeSimulator;
import io.anneal.billing.sim.Scenario;
import io.anneal.billing.sim.SimulationResult;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.WorkerExecutor;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.MultiMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * {@code bme simulate} over HTTP, for the web UI and for operators who want a scenario without a shell
 * (docs/bme.md). A run takes a few CPU seconds: it runs on a thread of its own, one at a time, and the
 * last few results are kept (a run is deterministic in its parameters), so asking again costs nothing.
 */
final class ScenarioRuns implements AutoCloseable {
  /** Results kept, least recently asked dropped first. */
  private static final int KEPT = 8;
  /** At most four weeks: the UI's charts and a run's seconds stay reasonable. */
  static final int MAX_HOURS = 24 * 28;

  private final WorkerExecutor pool;
  private final AtomicBoolean running = new AtomicBoolean();
  private final Map<BmeSimulator.Config, JsonObject> kept = new LinkedHashMap<>(16, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<BmeSimulator.Config, JsonObject> eldest) {
      return size() > KEPT;
    }
  };

  ScenarioRuns(Vertx vertx) {
    this.pool = vertx.createSharedWorkerExecutor("anneal-scenarios", 1);
  }

  /** The scenarios there are, with what each does. */
  static JsonObject list() {
    JsonArray a = new JsonArray();
    for (Scenario s : Scenario.values()) a.add(new JsonObject().put("id", s.id()).put("description", describe(s)));
    return new JsonObject().put("scenarios", a).put("eventHour", Scenario.EVENT_HOUR).put("maxHours", MAX_HOURS);
  }

  private static String describe(Scenario s) {
    return switch (s) {
      case STEADY -> "nothing happens: the baseline";
      case SPIKE_10X -> "demand x10 overnight at the event, for one day, then back";
      case ORACLE_OUTAGE -> "no fresh oracle price for six hours from the event";
      case PRICE_CRASH -> "the AKT price falls by 70 % over two hours from the event and stays there";
      case PROVIDER_EXODUS -> "every second large provider leaves at the event";
    };
  }

  /** The run's parameters from the query ({@code hours}, {@code seed}, {@code pricing}, {@code bootstrap}). */
  static BmeSimulator.Config config(String id, MultiMap q) {
    Scenario s = Scenario.byId(id).orElseThrow(() -> Problem.notFound("no scenario '" + id + "' (one of " + Scenario.ids() + ")"));
    int hours = (int) number(q, "hours", 96, 1, MAX_HOURS);
    long seed = number(q, "seed", 1, Long.MIN_VALUE, Long.MAX_VALUE);
    return new BmeSimulator.Config(s, hours, seed, flag(q, "pricing"), flag(q, "bootstrap"));
  }

  private static long number(MultiMap q, String name, long dflt, long min, long max) {
    String raw = q.get(name);
    try {
      long v = raw == null ? dflt : Long.parseLong(raw);
      if (v >= min && v <= max) return v;
    } catch (NumberFormatException e) {
      // answered below, as an out-of-range value is
    }
    throw new Problem("invalid-query", 422, "Invalid query", name + (max == Long.MAX_VALUE ? " must be an integer" : " must be " + min + ".." + max));
  }

  private static boolean flag(MultiMap q, String name) {
    String raw = q.get(name);
    if (raw == null || raw.equals("true")) return true;
    if (raw.equals("false")) return false;
    throw new Problem("invalid-query", 422, "Invalid query", name + " must be true or false");
  }

  /** The run's summary and its hours as rows of the CSV's columns; a kept one at once, else computed (409 while another runs). */
  Future<JsonObject> run(BmeSimulator.Config c) {
    synchronized (kept) {
      JsonObject done = kept.get(c);
      if (done != null) return Future.succeededFuture(done);
    }
    if (!running.compareAndSet(false, true)) {
      return Future.failedFuture(new Problem("simulation-running", 409, "A simulation is running",
          "one scenario runs at a time; ask again in a few seconds"));
    }
    return pool.<JsonObject>executeBlocking(() -> json(new BmeSimulator(c).run()))
        .onComplete(ar -> running.set(false))
        .onSuccess(j -> {
          synchronized (kept) {
            kept.put(c, j);
          }
        });
  }

  /** {summary, columns, rows}: the rows hold the CSV's values, numbers as (exact) numbers, an empty cell as null. */
  static JsonObject json(SimulationResult r) {
    String[] lines = r.csv().split("\n");
    JsonArray columns = new JsonArray();
    for (String h : lines[0].split(",", -1)) columns.add(h);
    JsonArray rows = new JsonArray();
    for (int i = 1; i < lines.length; i++) {
      if (lines[i].isEmpty()) continue;
      JsonArray row = new JsonArray();
      for (String v : lines[i].split(",", -1)) row.add(cell(v));
      rows.add(row);
    }
    return new JsonObject().put("summary", JsonObject.mapFrom(r.summary())).put("columns", columns).put("rows", rows);
  }

  private static Object cell(String v) {
    if (v.isEmpty()) return null;
    if (v.equals("true") || v.equals("false")) return Boolean.parseBoolean(v);
    try {
      // token amounts keep their six decimals exactly as the CSV has them
      return v.indexOf('.') < 0 ? (Object) Long.parseLong(v) : (Object) new java.math.BigDecimal(v);
    } catch (NumberFormatException e) {
      return v; // a breaker status
    }
  }

  @Override
  public void close() {
    pool.close();
  }
}
