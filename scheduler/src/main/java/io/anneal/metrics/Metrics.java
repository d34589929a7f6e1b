package io.anneal.metrics;

import io.anneal.billing.sql.WriterStats;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.anneal.job.JobState;
import java.time.Duration;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/** Every meter of the service (outside billing's own), declared once, named anneal.component.thing. */
public final class Metrics {
  private final MeterRegistry registry;
  private final Map<JobState, AtomicLong> jobsByState = new EnumMap<>(JobState.class);
  private final AtomicLong queueDepth = new AtomicLong();
  private final AtomicLong gpusFree = new AtomicLong();
  private final AtomicLong gpusTotal = new AtomicLong();
  private final AtomicLong actOutstanding = new AtomicLong();
  private final AtomicLong vaultAkt = new AtomicLong();
  private final AtomicLong aktBurnedForAct = new AtomicLong();
  private final AtomicLong actMinted = new AtomicLong();
  private final AtomicLong aktMinted = new AtomicLong();
  private final AtomicLong actBurned = new AtomicLong();
  private final AtomicLong escrowed = new AtomicLong();
  public final Timer placementLatency;
  public final Counter jobsSubmitted;
  public final Counter jobsRefused;
  public final Counter receiptsPublished;
  /** Finished jobs removed from the store after retention.finishedJobDays. */
  public final Counter jobsRemoved;
  private final AtomicLong backupEndedSeconds = new AtomicLong(-1);
  private final AtomicLong backupBytes = new AtomicLong(-1);

  /** Finished runs whose end the store has not recorded yet and that are being retried (ADR 16). */
  public final AtomicLong runsUnrecorded = new AtomicLong();
  public final Counter preemptions;
  /** Worker nodes taken out of the fleet because they stopped answering (cluster mode, ADR 19). */
  public final Counter nodesLost;

  public Metrics(MeterRegistry registry) {
    this.registry = registry;
    for (JobState s : JobState.values()) {
      AtomicLong v = new AtomicLong();
      jobsByState.put(s, v);
      Gauge.builder("anneal.jobs", v, AtomicLong::get).tag("state", s.name()).description("jobs by state")
          .register(registry);
    }
    Gauge.builder("anneal.scheduler.queue.depth", queueDepth, AtomicLong::get).description("jobs waiting for GPUs")
        .register(registry);
    Gauge.builder("anneal.scheduler.pricing.windows.unsent", windowsUnsent, AtomicLong::get)
        .description("closed pricing windows billing has not stored yet (sent again every 5 s; saved, ADR 22)")
        .register(registry);
    Gauge.builder("anneal.fleet.gpus", gpusFree, AtomicLong::get).tag("state", "free").register(registry);
    Gauge.builder("anneal.fleet.gpus", gpusTotal, AtomicLong::get).tag("state", "all").register(registry);
    Gauge.builder("anneal.bme.act.outstanding", actOutstanding, AtomicLong::get).baseUnit("uact")
        .description("ACT in existence").register(registry);
    Gauge.builder("anneal.bme.vault.akt", vaultAkt, AtomicLong::get).baseUnit("uakt").register(registry);
    Gauge.builder("anneal.bme.akt.burned", aktBurnedForAct, AtomicLong::get).baseUnit("uakt")
        .description("AKT taken out of circulation by mints (remint credits accrued)").register(registry);
    Gauge.builder("anneal.bme.act.minted", actMinted, AtomicLong::get).baseUnit("uact").register(registry);
    Gauge.builder("anneal.bme.akt.minted", aktMinted, AtomicLong::get).baseUnit("uakt")
        .description("AKT newly created by redemptions").register(registry);
    Gauge.builder("anneal.bme.act.burned", actBurned, AtomicLong::get).baseUnit("uact").register(registry);
    Gauge.builder("anneal.billing.escrow", escrowed, AtomicLong::get).baseUnit("uact").register(registry);
    placementLatency = Timer.builder("anneal.scheduler.placement.latency")
        .description("time from submit to placement").publishPercentileHistogram()
        .minimumExpectedValue(Duration.ofMillis(1)).maximumExpectedValue(Duration.ofMinutes(10)).register(registry);
    jobsSubmitted = Counter.builder("anneal.api.jobs.submitted").register(registry);
    jobsRefused = Counter.builder("anneal.api.jobs.refused").register(registry);
    receiptsPublished = Counter.builder("anneal.worker.receipts.published").register(registry);
    jobsRemoved = Counter.builder("anneal.store.jobs.removed")
        .description("finished jobs removed after their retention (their receipts stay in the ledger)").register(registry);
    Gauge.builder("anneal.backup.last.ended", backupEndedSeconds, v -> v.get() < 0 ? Double.NaN : v.get()).baseUnit("seconds")
        .description("when the last automatic backup was written (unix time)").register(registry);
    Gauge.builder("anneal.backup.last.size", backupBytes, v -> v.get() < 0 ? Double.NaN : v.get()).baseUnit("bytes")
        .register(registry);
    Gauge.builder("anneal.worker.runs.unrecorded", runsUnrecorded, AtomicLong::get)
        .description("finished runs whose end the store could not record yet; retried, their receipts kept").register(registry);
    preemptions = Counter.builder("anneal.scheduler.preemptions").description("running jobs stopped for higher priority")
        .register(registry);
    nodesLost = Counter.builder("anneal.scheduler.nodes.lost")
        .description("worker nodes taken out of the fleet after missing their heartbeats; their jobs were queued again")
        .register(registry);
    placementMeters();
  }

  private final AtomicLong fragmentation = new AtomicLong();
  private final AtomicLong oracleHealthy = new AtomicLong();
  private final java.util.concurrent.atomic.AtomicReference<Double> oraclePrice = new java.util.concurrent.atomic.AtomicReference<>(Double.NaN);
  private final AtomicLong breakerStatus = new AtomicLong();

  /** The oracle's health and aggregate AKT/USD price (NaN when none). */
  public void oracle(boolean healthy, double price) {
    oracleHealthy.set(healthy ? 1 : 0);
    oraclePrice.set(price);
  }
  private io.micrometer.core.instrument.MultiGauge utilization;
  private io.micrometer.core.instrument.MultiGauge queueByTenant;

  private void placementMeters() {
    Gauge.builder("anneal.bme.oracle.healthy", oracleHealthy, AtomicLong::get).description("1 when the oracle is healthy")
        .register(registry);
    Gauge.builder("anneal.bme.oracle.price", oraclePrice, java.util.concurrent.atomic.AtomicReference::get)
        .description("aggregate AKT/USD price (TWAP)").register(registry);
    Gauge.builder("anneal.bme.breaker.status", breakerStatus, AtomicLong::get)
        .description("circuit breaker: 1 HEALTHY, 2 WARNING, 3 HALT_CR, 4 HALT_ORACLE").register(registry);
    Gauge.builder("anneal.scheduler.fragmentation", fragmentation, AtomicLong::get)
        .description("free GPUs that cannot serve the largest queued job").register(registry);
    utilization = io.micrometer.core.instrument.MultiGauge.builder("anneal.scheduler.utilization")
        .description("share of GPUs in use, by class").register(registry);
    queueByTenant = io.micrometer.core.instrument.MultiGauge.builder("anneal.scheduler.queue.jobs")
        .description("queued jobs by tenant and priority").register(registry);
  }

  /** Placement state: fragmentation, utilization per class {free,total}, queue depth per tenant and priority. */
  public void placement(int frag, Map<String, int[]> byClass, Map<String, Map<Integer, Integer>> depth) {
    fragmentation.set(frag);
    List<io.micrometer.core.instrument.MultiGauge.Row<?>> rows = new java.util.ArrayList<>();
    byClass.forEach((cls, ft) -> rows.add(io.micrometer.core.instrument.MultiGauge.Row.of(
        io.micrometer.core.instrument.Tags.of("class", cls), ft[1] == 0 ? 0.0 : 1.0 - (double) ft[0] / ft[1])));
    utilization.register(rows, true);
    List<io.micrometer.core.instrument.MultiGauge.Row<?>> q = new java.util.ArrayList<>();
    int[] budget = {200}; // bounded cardinality: the 200 largest entries are enough for a dashboard
    depth.forEach((tenant, byPrio) -> byPrio.forEach((prio, n) -> {
      if (budget[0]-- > 0) {
        q.add(io.micrometer.core.instrument.MultiGauge.Row.of(
            io.micrometer.core.instrument.Tags.of("tenant", tenant, "priority", Integer.toString(prio)), n));
      }
    }));
    queueByTenant.register(q, true);
  }

  /**
   * A group-commit writer's meters, tagged with its name: operations queued, transactions and
   * operations committed, batches retried after a transient conflict, failed batches split, and
   * operations that failed.
   */
  public void writer(WriterStats w) {
    Gauge.builder("anneal.store.writer.queued", w, WriterStats::queued).tag("writer", w.name())
        .description("operations waiting for a transaction").register(registry);
    writerCounter(w, "commits", WriterStats::commits, "transactions committed");
    writerCounter(w, "operations", WriterStats::committedOps, "operations committed");
    writerCounter(w, "retries", WriterStats::transientRetries,
        "batches retried whole after a deadlock or serialization failure");
    writerCounter(w, "splits", WriterStats::splits, "failed batches split in halves to isolate the failing operation");
    writerCounter(w, "failures", WriterStats::failedOps, "operations that failed");
  }

  private void writerCounter(WriterStats w, String name, java.util.function.ToDoubleFunction<WriterStats> count,
      String description) {
    FunctionCounter.builder("anneal.store.writer." + name, w, count).tag("writer", w.name()).description(description)
        .register(registry);
  }

  /**
   * The ledger audits' meters (ADR 14), periodic and on request: what the last one found (NaN until
   * one ran), when it ended, how long each took; a WARNING in the log when one finds anything.
   */
  /** An automatic backup was written: when (for alerts on backups that stopped) and how large. */
  public void backupWritten(long bytes) {
    backupBytes.set(bytes);
    backupEndedSeconds.set(System.currentTimeMillis() / 1000);
  }

  public void ledgerAudits(io.anneal.store.JobStore store) {
    AtomicLong findings = new AtomicLong(-1);
    AtomicLong endedAt = new AtomicLong();
    Gauge.builder("anneal.ledger.audit.findings", findings, f -> f.get() < 0 ? Double.NaN : f.get())
        .description("what the last ledger audit found (0: nothing wrong; NaN: none ran yet)").register(registry);
    Gauge.builder("anneal.ledger.audit.last.ended", endedAt, AtomicLong::get).baseUnit("seconds")
        .description("when the last ledger audit ended (Unix time)").register(registry);
    Timer took = Timer.builder("anneal.ledger.audit").description("ledger audits, how long each took").register(registry);
    java.util.logging.Logger log = java.util.logging.Logger.getLogger("io.anneal.billing.ledger.LedgerAudit");
    store.onAudit((report, nanos) -> {
      findings.set(report.findingCount());
      endedAt.set(System.currentTimeMillis() / 1000);
      took.record(Duration.ofNanos(nanos));
      if (report.clean()) {
        log.info(String.format("ledger audit: nothing wrong found in %.1f s (%s)", nanos / 1e9, report.checked().get("receipts")));
      } else {
        log.warning("ledger audit: " + report.findingCount() + " finding(s), first: " + report.findings().get(0)
            + " (java -jar anneal.jar ledger verify, or GET /api/v1/ledger/audit, lists them)");
      }
    });
  }

  /** How receipts are settled: lanes settling at once (0: on the store's writer; ADR 11, ADR 12). */
  public void settlementLanes(int count) {
    Gauge.builder("anneal.billing.settlement.lanes", () -> count)
        .description("settlement lanes settling receipts at once, JDBC or Vert.x SQL client (0: on the store's writer)").register(registry);
  }

  /**
   * Cluster mode: changes a scheduler was not told of on the bus and found in the store (ADR 19): {@code what}
   * is {@code submission}, {@code policy}, {@code quarantine} or {@code lift}. A count that keeps growing says
   * the bus loses messages, not only around a takeover. Also {@code window}: pricing windows an earlier
   * scheduler saved and billing had not stored, sent by this one (ADR 22; after a crash too).
   */
  public void repairedFromStore(String what, int n) {
    if (n > 0) {
      Counter.builder("anneal.scheduler.repaired").tag("what", what)
          .description("changes the scheduler was not told of on the bus and found in the store").register(registry).increment(n);
    }
  }

  public MeterRegistry registry() {
    return registry;
  }

  public void jobsByState(Map<JobState, Long> counts) {
    counts.forEach((s, n) -> jobsByState.get(s).set(n));
  }

  private final AtomicLong windowsUnsent = new AtomicLong();

  /** Closed pricing windows the scheduler holds that billing has not stored (ADR 21, 22). */
  public void pricingWindowsUnsent(int n) {
    windowsUnsent.set(n);
  }

  public void fleet(int free, int total, int queued) {
    gpusFree.set(free);
    gpusTotal.set(total);
    queueDepth.set(queued);
  }

  public void supply(io.anneal.billing.ledger.SupplyView s) {
    actOutstanding.set(s.actSupply());
    vaultAkt.set(s.vaultAkt());
    aktBurnedForAct.set(s.remintCredits());
    actMinted.set(s.totalMintedUact());
    aktMinted.set(s.totalMintedUakt());
    actBurned.set(s.totalBurnedUact());
    escrowed.set(s.escrowedUact());
    breakerStatus.set(io.anneal.billing.bme.Status.valueOf(s.status()).ordinal());
  }
}
