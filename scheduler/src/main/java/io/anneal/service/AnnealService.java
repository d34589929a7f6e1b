package io.anneal.service;

import io.anneal.api.ApiVerticle;
import io.anneal.billing.BillingVerticle;
import io.anneal.billing.SettlementLanes;
import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.OracleAggregator;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.bme.Status;
import io.anneal.billing.bme.StatusUpdate;
import io.anneal.billing.oracle.FilePriceFeed;
import io.anneal.billing.oracle.FixedPriceFeed;
import io.anneal.billing.oracle.OracleState;
import io.anneal.billing.oracle.PriceFeed;
import io.anneal.billing.oracle.SimulatedPriceFeed;
import java.util.function.Supplier;
import io.anneal.billing.ledger.Mints;
import io.anneal.billing.ledger.Redemptions;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.pricing.PriceBook;
import io.anneal.billing.receipt.NodeKeys;
import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;
import io.anneal.config.AnnealConfig;
import io.anneal.gpu.Backends;
import io.anneal.gpu.GpuBackend;
import io.anneal.job.Ids;
import io.anneal.metrics.Metrics;
import io.anneal.sched.SchedulerVerticle;
import io.anneal.store.JobStore;
import io.anneal.store.TenantStore;
import io.anneal.worker.WorkerVerticle;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.micrometer.MicrometerMetricsFactory;
import io.vertx.micrometer.MicrometerMetricsOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Logger;

/** One Anneal instance: store, backend, Vert.x and the verticles of its roles. */
public final class AnnealService {
  private static final Logger LOG = Logger.getLogger(AnnealService.class.getName());

  private final AnnealConfig config;
  private final AtomicBoolean ready = new AtomicBoolean();
  /** Settlement lanes when db.settlementLanes is auto and the store is PostgreSQL (ADR 0011). */
  static final int AUTO_LANES = 3;

  private Database db;
  private JobStore store;
  private SettlementLanes settlementLanes;
  /** An automatic backup is being written. */
  private final java.util.concurrent.atomic.AtomicBoolean backingUp = new java.util.concurrent.atomic.AtomicBoolean();
  /** Lanes for the Vert.x SQL client ledger (ADR 12), or 0 when billing settles through JDBC. */
  private int vertxLedgerLanes;
  private io.anneal.billing.ledger.LedgerStore ledger;
  private Metrics metrics;
  private GpuBackend backend;
  private Vertx vertx;
  private ApiVerticle api;
  private SchedulerVerticle scheduler;
  private WorkerVerticle worker;
  private PrometheusMeterRegistry prometheus;
  private OracleState oracleState;
  private String nodeId;
  private volatile boolean stopped;

  private final GpuBackend injectedBackend;

  public AnnealService(AnnealConfig config) {
    this(config, null);
  }

  /** With a given backend instead of the one {@code --gpu-backend} names (tests, embedding). */
  public AnnealService(AnnealConfig config, GpuBackend backend) {
    this.config = config;
    this.injectedBackend = backend;
  }

  public AnnealConfig config() {
    return config;
  }

  /**
   * Starts everything; the returned future completes when the service is ready. A start that fails
   * stops what it started (on a thread of its own: stopping waits for Vert.x to close, which an event
   * loop must not do), then fails.
   */
  public Future<Void> start() {
    io.vertx.core.Promise<Void> result = io.vertx.core.Promise.promise(); // no context: answered on the thread that ends it
    startAll().onComplete(ar -> {
      if (ar.succeeded()) {
        result.complete();
        return;
      }
      Thread t = new Thread(() -> {
        stop();
        result.fail(ar.cause());
      }, "anneal-failed-start");
      t.start();
    });
    return result.future();
  }

  private Future<Void> startAll() {
    try {
      if (config.cluster() && config.dbUrl().isEmpty()) {
        throw new IllegalStateException("--cluster needs --db-url postgresql://...: the instances of a cluster share one"
            + " PostgreSQL (the embedded H2 file is one process's)");
      }
      Files.createDirectories(config.dataDir());
      nodeId = config.nodeId().isEmpty() ? persistentNodeId(config.dataDir()) : config.nodeId();
      // settlement lanes (ADR 0011) each commit on a connection of their own, on top of the pool
      // (with the Vert.x SQL client ledger, ADR 12, on connections of that client's pool)
      boolean vertxLedger = config.ledgerClient().equals("vertx");
      int lanes = config.settlementLanes() >= 0 ? config.settlementLanes() : config.dbUrl().isEmpty() ? 0 : AUTO_LANES;
      db = config.dbUrl().isEmpty() ? Database.h2File(config.dataDir(), config.dbPoolSize())
          : Database.open(config.dbUrl(), null, config.dbPoolSize() + (vertxLedger ? 0 : lanes));
      if (config.backupEverySeconds() > 0 && db.postgres()) {
        throw new IllegalStateException("backup.everySeconds " + config.backupEverySeconds() + ": automatic backups are of the"
            + " embedded store; back PostgreSQL up with its own tools (pg_dump, base backups) and set it to 0");
      }
      if (lanes > 0 && !db.postgres()) {
        if (config.settlementLanes() > 0) {
          throw new IllegalStateException("db.settlementLanes " + lanes + ": settlement lanes need PostgreSQL; on H2 set"
              + " it to 0 or auto");
        }
        lanes = 0;
      }
      db.migrate("db/ledger", "flyway_ledger_history");
      db.migrate("db/jobs", "flyway_jobs_history");
      requireEpochLength(db, config.epochSeconds());
      LOG.info("store: " + db.describe());
      store = new JobStore(db);
      if (vertxLedger) {
        vertxLedgerLanes = db.postgres() ? Math.max(1, lanes) : 1;
        settlementLanes = SettlementLanes.shared(store.writer()); // unused for receipts: they settle on the Vert.x client
      } else {
        settlementLanes = lanes > 0 ? SettlementLanes.own(db, lanes, 2000) : SettlementLanes.shared(store.writer());
      }
      backend = injectedBackend != null ? injectedBackend : Backends.open(config.gpuBackend(), config.cpuDevices(), Backends.parseSimulated(config.simulatedGpus()),
          new io.anneal.gpu.FileModelStore(config.dataDir().resolve("models")));
      LOG.info("GPU backend: " + backend.name() + " with " + backend.devices().size() + " device(s)");
    } catch (IOException | RuntimeException e) {
      closeResources();
      return Future.failedFuture(e);
    }
    MeterRegistryLog.install(); // no warning for the gauges Vert.x's metrics register again by design
    prometheus = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    VertxOptions options = new VertxOptions().setMetricsOptions(new MicrometerMetricsOptions().setEnabled(true));
    if (!config.cluster()) {
      vertx = Vertx.builder().with(options).withMetrics(new MicrometerMetricsFactory(prometheus)).build();
      return startOnVertx();
    }
    // cluster mode (ADR 19): the event bus spans the instances that joined over Hazelcast
    io.vertx.spi.cluster.hazelcast.HazelcastClusterManager manager;
    try {
      manager = ClusterSetup.manager(config);
      clusterManager = manager;
    } catch (RuntimeException e) {
      closeResources();
      return Future.failedFuture(e);
    }
    return Vertx.builder().with(options.setEventBusOptions(ClusterSetup.eventBus(config)))
        .withMetrics(new MicrometerMetricsFactory(prometheus)).withClusterManager(manager).buildClustered()
        .recover(e -> Future.failedFuture(new IllegalStateException("could not join the cluster " + config.clusterName()
            + " at " + config.clusterMembers() + " from port " + config.clusterPort() + ": " + e.getMessage()
            + (config.clusterTls() == null ? "" : " (cluster TLS: certificate " + config.clusterTls().certPath() + ", key "
                + config.clusterTls().keyPath() + ", CA " + config.clusterTls().caPath() + ")"), e)))
        .compose(v -> {
          vertx = v;
          LOG.info("joined cluster " + config.clusterName() + " as " + manager.getNodeId() + " (" + manager.getNodes().size()
              + " member(s))");
          if (config.clusterTls() != null) watchClusterCertificate(config.clusterTls().certPath());
          return startOnVertx();
        });
  }

  /** Days before its expiry from which the event bus's certificate is warned about at start. */
  static final long CLUSTER_CERT_WARN_DAYS = 14;

  /**
   * Cluster TLS (ADR 27): the event bus's certificate is read at start only (a rolling restart renews it),
   * so when it expires is a gauge to alert on ({@code anneal_cluster_tls_certificate_not_after_seconds}),
   * and a start with less than {@link #CLUSTER_CERT_WARN_DAYS} left says so.
   */
  private void watchClusterCertificate(java.nio.file.Path certPath) {
    java.security.cert.X509Certificate leaf;
    try (java.io.InputStream in = java.nio.file.Files.newInputStream(certPath)) {
      leaf = (java.security.cert.X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509")
          .generateCertificates(in).iterator().next();
    } catch (Exception e) {
      LOG.warning("cluster TLS: could not read the certificate " + certPath + " for its expiry: " + e.getMessage());
      return;
    }
    long notAfterMs = leaf.getNotAfter().getTime();
    io.micrometer.core.instrument.Gauge.builder("anneal.cluster.tls.certificate.not.after", () -> notAfterMs / 1000.0)
        .description("when the certificate of this instance's event bus expires (seconds since the epoch); renewed by a restart")
        .baseUnit("seconds").register(prometheus);
    long daysLeft = (notAfterMs - System.currentTimeMillis()) / 86_400_000L;
    if (daysLeft < CLUSTER_CERT_WARN_DAYS) {
      LOG.warning("cluster TLS: the certificate " + certPath + " (" + leaf.getSubjectX500Principal() + ") expires in "
          + daysLeft + " day(s), at " + leaf.getNotAfter().toInstant() + ": renew it and restart this instance before then");
    }
  }

  /** Cluster mode: the Hazelcast member this instance runs (the members it sees now), else null. */
  private volatile io.vertx.spi.cluster.hazelcast.HazelcastClusterManager clusterManager;

  /** Whether {@link #stop} was called. */
  public boolean stopped() {
    return stopped;
  }

  /** How many members of the cluster this instance sees now (1 on a single instance). */
  public int clusterMembersSeen() {
    var m = clusterManager;
    return m == null ? 1 : m.getNodes().size();
  }

  /** Instances of a cluster playing a role only one may play at a time (ADR 19); empty on a single instance. */
  private final java.util.List<LeasedRole> leasedRoles = new java.util.concurrent.CopyOnWriteArrayList<>();
  private LeasedRole billingRole;

  /** Whether this instance settles receipts and runs the BME's ticks and audits now. */
  private boolean billingActive() {
    return config.cluster() ? billingRole != null && billingRole.active() : config.hasRole("billing");
  }

  /** A role only one instance of the cluster plays at a time, taken when its lease is free (ADR 19). */
  private LeasedRole leased(String role, java.util.function.LongFunction<io.vertx.core.Deployable> make, Runnable onLost) {
    String holder = nodeId + " (pid " + ProcessHandle.current().pid() + ")";
    LeasedRole r = new LeasedRole(vertx, new io.anneal.store.RoleLease(db, role, holder), make, onLost,
        this::clusterMembersSeen, config.clusterQuorum());
    io.micrometer.core.instrument.Gauge.builder("anneal_cluster_role_active", r, x -> x.active() ? 1 : 0)
        .description("1 while this instance plays the role (cluster mode: lease held, ADR 19)").tag("role", role)
        .register(prometheus);
    leasedRoles.add(r);
    return r;
  }

  private Future<Void> startOnVertx() {
    Metrics metrics = new Metrics(prometheus);
    this.metrics = metrics;
    metrics.writer(store.writer());
    metrics.ledgerAudits(store);
    TenantStore tenants = new TenantStore(store);
    BmeParams d = BmeParams.defaults();
    BmeParams params = new BmeParams(d.circuitBreakerWarnThreshold(), d.circuitBreakerHaltThreshold(), config.minEpochTicks(),
        d.epochBlocksBackoffPercent(), d.mintSpreadBps(), d.settleSpreadBps(), d.maxEndblockerRecords(), d.minMint(),
        d.maxPendingAttempts(), config.bmeOptions());
    OracleAggregator.Params oracleParams = new OracleAggregator.Params(1, config.oracleMaxStalenessSeconds() * 1_000_000_000L,
        OracleAggregator.Params.defaults().twapWindowNs(), OracleAggregator.Params.defaults().maxPriceDeviationBps());
    oracleState = new OracleState(oracleParams);
    PriceFeed feed = switch (config.oracleSource()) {
      case "file" -> new FilePriceFeed(Path.of(config.oracleFile()));
      case "http" -> new io.anneal.billing.oracle.HttpPriceFeed(java.net.URI.create(config.oracleUrl().trim()),
          java.time.Duration.ofSeconds(Math.max(1, Math.min(10, config.oraclePollSeconds()))));
      case "simulated" -> new SimulatedPriceFeed(config.oracleSeed(), Double.parseDouble(config.oraclePriceAkt()), 0.002, 0.01, 0.2);
      default -> new FixedPriceFeed(io.anneal.billing.bme.Dec.parse(config.oraclePriceAkt()));
    };
    pollOracle(feed); // a first price before anything needs one
    Supplier<OracleSnapshot> oracle = () -> oracleState.snapshot(nowNs());
    GroupCommitWriter writer = store.writer();
    // class prices: the configured base, moved by utilization per window when billing.priceAdjust is on
    PriceBook prices = PriceBook.withDefaults(config.pricesUactPerGpuHour());

    Future<Void> seeded = Future.fromCompletionStage(againOnUniqueViolation(() -> seed(tenants, oracle.get(), params),
            SEED_ATTEMPTS, e -> LOG.info("first-start setup met another instance's (" + e.getMessage()
                + "); running it again, as what that one wrote is now there"))
        .thenCompose(v -> store.read(SqlLedger::loadPrices)).thenAccept(prices::restore), vertx.getOrCreateContext());
    return seeded.compose(v -> {
      Future<String> f = Future.succeededFuture();
      long window = config.priceAdjust() || config.bootstrapFund() ? config.priceWindowSeconds() : 0;
      if (config.hasRole("billing")) {
        if (config.cluster()) {
          billingRole = leased("billing", epoch -> billingVerticle(writer, prices), () -> {});
        } else {
          f = f.compose(x -> vertx.deployVerticle(billingVerticle(writer, prices)));
        }
      }
      if (config.hasRole("scheduler")) {
        if (config.cluster()) {
          // placements are fenced with the lease's epoch; runs still going on workers are adopted
          leased("scheduler", epoch -> {
            store.fenceScheduler(epoch);
            scheduler = new SchedulerVerticle(store, metrics, window).withTakeover(config.takeoverGraceMs())
                .withNodeTimeout(config.nodeTimeoutMs()).withReconcileAfter(config.reconcileAfterMs())
                .withSweepMargin(config.sweepMarginMs()).withTenantQueueLimit(config.maxQueuedJobsPerTenant())
                .withClusterMembers(clusterManager::getNodes);
            return scheduler;
          }, () -> {
            if (scheduler != null) scheduler.depose();
          });
        } else {
          scheduler = new SchedulerVerticle(store, metrics, window).withTenantQueueLimit(config.maxQueuedJobsPerTenant());
          f = f.compose(x -> vertx.deployVerticle(scheduler));
        }
      }
      if (config.hasRole("api")) {
        api = new ApiVerticle(config, store, tenants, metrics, prometheus, oracle, oracleState, params, ready, prices)
            .withClusterMembers(this::clusterMembersSeen);
        f = f.compose(x -> vertx.deployVerticle(api));
        if (config.cluster()) {
          // one instance delivers webhooks (each delivery once)
          leased("webhooks", epoch -> new io.anneal.webhook.WebhookVerticle(store, prometheus), () -> {});
        } else {
          f = f.compose(x -> vertx.deployVerticle(new io.anneal.webhook.WebhookVerticle(store, prometheus)));
        }
      }
      if (config.hasRole("worker")) {
        // a key rotation cut short by a crash (ADR 18): finished if the ledger took the new key, else dropped
        f = f.compose(x -> Future.fromCompletionStage(store.writer().submit(c -> SqlLedger.nodeKey(c, nodeId)),
                vertx.getOrCreateContext()))
            .compose(registered -> vertx.executeBlocking(() -> {
              NodeKeys.finishRotation(config.dataDir(), registered)
                  .ifPresent(done -> LOG.warning("node " + nodeId + ": a key rotation cut short by a stop was " + done));
              return NodeKeys.loadOrCreate(config.dataDir());
            }))
            .compose(key -> {
              // the key a provider gives tenants and auditors to pin (anneal receipt verify --node-key)
              LOG.info("node " + nodeId + " signs receipts with Ed25519 key " + NodeKeys.encodePublic(key.getPublic()) + " ("
                  + io.anneal.billing.receipt.ReceiptCheck.fingerprint(NodeKeys.encodePublic(key.getPublic())) + ", "
                  + config.dataDir().resolve(NodeKeys.PUBLIC_FILE) + ")");
              worker = new WorkerVerticle(nodeId, backend, key, store, metrics).withKeyDir(config.dataDir());
              if (config.cluster()) worker.inCluster(config.nodeTimeoutMs(), config.reconcileAfterMs(), clusterManager::getNodeId);
              return vertx.deployVerticle(worker);
            });
      }
      return f.mapEmpty();
    }).compose(v -> {
      // prices moved by the instance that plays billing: quoted here from then on (ADR 20)
      vertx.eventBus().<io.vertx.core.json.JsonObject>consumer(io.anneal.billing.BillingAddresses.PRICES_CHANGED, m -> {
        try {
          prices.restore(io.anneal.billing.PriceChanges.decode(m.body()));
        } catch (IllegalArgumentException e) {
          LOG.warning("price changes dropped: " + e.getMessage());
        }
      });
      if (config.cluster() && config.priceAdjust()) {
        // and read from the store now and then, for a change whose message this instance missed
        long every = Math.max(1_000, Math.min(30_000, config.priceWindowSeconds() * 1000));
        vertx.setPeriodic(every, id -> store.read(c -> SqlLedger.loadPricesAfter(c, prices)).whenComplete((ch, e) -> {
          if (e == null) {
            prices.restore(ch);
          } else {
            LOG.fine("could not read the stored prices: " + e.getMessage());
          }
        }));
      }
      leasedRoles.forEach(LeasedRole::start);
      vertx.setPeriodic(1000, id -> refreshGauges(metrics));
      vertx.setPeriodic(config.oraclePollSeconds() * 1000, id -> vertx.executeBlocking(() -> {
        pollOracle(feed);
        return null;
      }));
      // the BME tick (bme-spec 9.1): a redemption epoch every minEpochTicks ticks pays providers out in
      // AKT; the breaker follows the collateral ratio and the oracle; a mint epoch every epochHeightDiff
      // ticks while HEALTHY or WARNING (the backoff of 7.2) turns queued deposits into ACT. One budget
      // of maxEndblockerRecords per tick is shared by both queues.
      long[] tick = {0};
      io.anneal.billing.ledger.LedgerTicks ticks = new io.anneal.billing.ledger.LedgerTicks(params);
      vertx.setPeriodic(config.tickSeconds() * 1000, id -> {
        long h = ++tick[0];
        boolean billing = billingActive();
        OracleSnapshot now = oracle.get();
        store.writer().submitAlone(c -> {
          if (!billing) return SqlLedger.updateBreaker(c, now, params);
          // first, before any row lock: payouts name the settlements they redeem (see settlementBarrier)
          SqlLedger.settlementBarrier(c);
          if (config.aktDirect()) {
            int converted = Mints.convertDirectDeposits(c, now, params, System.currentTimeMillis());
            if (converted > 0) LOG.info(converted + " AKT-direct balance(s) queued for conversion into ACT after the halt");
          }
          var r = ticks.endTick(c, h, now, params, config.payoutMinUact(), System.currentTimeMillis());
          for (Redemptions.Outcome o : r.payouts()) {
            if (o.state().equals("CANCELED")) LOG.warning("payout " + o.id() + " of " + o.owner() + " cancelled: " + o.reason());
          }
          for (Mints.Outcome o : r.mints()) {
            if (o.state().equals("CANCELED")) LOG.warning("deposit " + o.id() + " of " + o.owner() + " cancelled: " + o.reason());
          }
          return r.update();
        }).whenComplete((u, e) -> {
          if (e != null) {
            LOG.warning("BME tick failed: " + e.getMessage());
          } else if (u.changed()) {
            LOG.warning("circuit breaker: " + u.state().previousStatus() + " -> " + u.state().status()
                + (u.cr() == null ? " (oracle unhealthy)" : " (CR " + u.cr().ratio() + ")"));
          }
        });
      });
      if (config.backupEverySeconds() > 0) {
        // automatic backups of the embedded store, the newest backup.keep kept (POST /api/v1/backups by hand)
        vertx.setPeriodic(config.backupEverySeconds() * 1000, id -> {
          if (!backingUp.compareAndSet(false, true)) return; // the last one has not ended
          io.anneal.store.Backups.take(store, config.dataDir(), config.backupKeep(), config.backupPassphrase()).whenComplete((w, e) -> {
            backingUp.set(false);
            if (e != null) {
              LOG.warning("backup failed (tried again in " + config.backupEverySeconds() + " s): " + e.getMessage());
            } else {
              metrics.backupWritten(w.bytes());
              LOG.info("backup written: " + w.file().toAbsolutePath() + " (" + w.bytes() + " bytes)");
            }
          });
        });
      }
      if (config.hasRole("billing") && config.finishedJobRetentionMs() > 0) {
        // retention: finished jobs leave the store (their receipts stay in the ledger), a batch at a time
        long every = Math.max(1_000, Math.min(600_000, config.finishedJobRetentionMs() / 10));
        vertx.setPeriodic(every, id -> {
          if (billingActive() && removingJobs.compareAndSet(false, true)) {
            removeFinishedJobs(System.currentTimeMillis() - config.finishedJobRetentionMs(), true, 0, metrics);
          }
        });
      }
      if (config.hasRole("billing") && config.ledgerAuditSeconds() > 0) {
        // ADR 14: the ledger audited from what it stores, in one snapshot beside the running service
        vertx.setPeriodic(config.ledgerAuditSeconds() * 1000, id -> (billingActive() ? store.audit(100)
            : java.util.Optional.<java.util.concurrent.CompletableFuture<io.anneal.billing.ledger.LedgerAudit.Report>>empty())
            .ifPresent(f -> f.whenComplete((r, e) -> {
              if (e != null) LOG.warning("ledger audit failed: " + e.getMessage());
            })));
      }
      ready.set(true);
      return Future.<Void>succeededFuture();
    });
  }

  private final java.util.concurrent.atomic.AtomicBoolean removingJobs = new java.util.concurrent.atomic.AtomicBoolean();
  /** Jobs removed per transaction, and batches per look at most (the next look goes on). */
  static final int REMOVE_BATCH = 1_000;
  static final int REMOVE_BATCHES_PER_LOOK = 100;

  /**
   * Removes finished jobs that ended before {@code cutoffMs}, then the webhook deliveries made before it
   * that have ended, a batch per transaction, until none is left or a look's batches are done.
   */
  private void removeFinishedJobs(long cutoffMs, boolean jobs, int batchesDone, Metrics metrics) {
    (jobs ? store.removeFinishedBefore(cutoffMs, REMOVE_BATCH) : store.removeEndedDeliveriesBefore(cutoffMs, REMOVE_BATCH))
        .whenComplete((n, e) -> {
          if (e != null) {
            removingJobs.set(false);
            LOG.warning("could not remove finished jobs or deliveries (tried again later): " + e.getMessage());
            return;
          }
          if (jobs) metrics.jobsRemoved.increment(n);
          int batches = batchesDone + 1;
          if (batches >= REMOVE_BATCHES_PER_LOOK || !billingActive() || (n < REMOVE_BATCH && !jobs)) {
            removingJobs.set(false);
          } else {
            // a full batch: more of the same; the jobs done: the deliveries
            removeFinishedJobs(cutoffMs, jobs && n == REMOVE_BATCH, batches, metrics);
          }
        });
  }

  private BillingVerticle billingVerticle(GroupCommitWriter writer, PriceBook prices) {
    if (ledger == null) { // once: a billing role taken again (cluster mode) settles through the same ledger
      ledger = ledgerStore(writer, prices);
      LOG.info("settlement: " + ledger.describe());
    }
    BillingVerticle b = new BillingVerticle(writer, prices, prometheus, config.epochSeconds())
        .withPriceAdjust(config.priceAdjust())
        .withLedger(ledger);
    if (config.bootstrapFund()) {
      java.util.Map<String, Long> floors = new java.util.TreeMap<>();
      config.pricesUactPerGpuHour().forEach((cls, p) -> floors.put(cls, p * config.bootstrapFloorPercent() / 100));
      var d = io.anneal.billing.pricing.BootstrapFund.defaults();
      b.withBootstrap(new BillingVerticle.Bootstrap(new io.anneal.billing.pricing.BootstrapFund(d.maxGpus(), d.minOnline(),
          d.u0(), d.u1(), config.bootstrapEndsAtMs()), floors));
    }
    return b;
  }

  /**
   * The ledger port billing settles through (ADR 12): JDBC on the store's writer or settlement lanes
   * (ADR 11), or the Vert.x SQL clients; its writers are in /metrics.
   */
  private io.anneal.billing.ledger.LedgerStore ledgerStore(GroupCommitWriter writer, PriceBook prices) {
    if (vertxLedgerLanes == 0) {
      settlementLanes.ownWriters().forEach(metrics::writer);
      metrics.settlementLanes(settlementLanes.ownLanes());
      return new io.anneal.billing.JdbcLedgerStore(writer, settlementLanes, prices::priceAt, System::currentTimeMillis,
          config.epochSeconds());
    }
    io.anneal.billing.ledger.SqlClientLedgerStore s = db.postgres()
        ? io.anneal.billing.ledger.SqlClientLedgerStore.postgres(vertx, db.jdbcUrl(), db.schema(), vertxLedgerLanes, 2000,
            prices::priceAt, System::currentTimeMillis, config.epochSeconds())
        : io.anneal.billing.ledger.SqlClientLedgerStore.h2(vertx, db.jdbcUrl(), 2000, prices::priceAt,
            System::currentTimeMillis, config.epochSeconds());
    metrics.writer(s.stats());
    metrics.settlementLanes(s.lanes());
    return s;
  }

  /**
   * Finished-job counts every 30 s, or less often once they take more than 0.3 s: at most 1 % of a
   * read connection's time, however many jobs the store holds (a pass over their part of the state
   * index, linear in them).
   */
  private final CountBudget finishedCounts = new CountBudget(30_000, 100);
  /** The last refresh's reads are not all answered: a store that answers slowly (or not) gets no pile of them. */
  private final java.util.concurrent.atomic.AtomicBoolean refreshingGauges = new java.util.concurrent.atomic.AtomicBoolean();

  /** Every second: jobs in flight, supply, oracle; finished jobs as {@link #finishedCounts} allows. */
  private void refreshGauges(Metrics metrics) {
    if (refreshingGauges.compareAndSet(false, true)) {
      long started = System.currentTimeMillis();
      boolean all = finishedCounts.due(started);
      java.util.concurrent.CompletableFuture.allOf(
          store.countsByState(all).whenComplete((m, e) -> {
            if (!all) return;
            if (e == null) finishedCounts.counted(started, System.currentTimeMillis());
            else finishedCounts.failed(started);
          }).thenAccept(metrics::jobsByState),
          store.read(SqlLedger::supply).thenAccept(metrics::supply))
          .whenComplete((v, e) -> refreshingGauges.set(false));
    }
    OracleAggregator.Result r = oracleState.aggregate(nowNs());
    metrics.oracle(r.healthy(), r.twap() == null ? Double.NaN : r.twap().value().doubleValue());
  }

  private static long nowNs() {
    java.time.Instant t = java.time.Instant.now();
    return t.getEpochSecond() * 1_000_000_000L + t.getNano();
  }

  /** Polls the feed (may block: called at start and on a worker thread); a failure is kept, not thrown. */
  private void pollOracle(PriceFeed feed) {
    try {
      feed.poll(nowNs()).ifPresent(r -> oracleState.record(feed.name(), r));
    } catch (Exception e) {
      oracleState.failed(feed.name(), e.getMessage());
      LOG.warning("oracle source " + feed.name() + " failed: " + e.getMessage());
    }
  }

  static final int SEED_ATTEMPTS = 3;

  /**
   * Runs {@code steps} again, up to {@code attempts} times in all, while it fails on a unique key another
   * transaction wrote meanwhile: instances of a cluster starting together on a new store each seed the
   * vault, the admin key and the demo tenant, each step read-then-write and idempotent, so the one that
   * loses the race finds, run again, what the other committed and writes nothing twice.
   */
  static <T> java.util.concurrent.CompletableFuture<T> againOnUniqueViolation(
      Supplier<java.util.concurrent.CompletableFuture<T>> steps, int attempts, java.util.function.Consumer<Throwable> onRetry) {
    return steps.get().handle((v, e) -> {
      if (e == null) return java.util.concurrent.CompletableFuture.completedFuture(v);
      Throwable cause = e instanceof java.util.concurrent.CompletionException && e.getCause() != null ? e.getCause() : e;
      if (attempts <= 1 || !isUniqueViolation(cause)) return java.util.concurrent.CompletableFuture.<T>failedFuture(cause);
      onRetry.accept(cause);
      return againOnUniqueViolation(steps, attempts - 1, onRetry);
    }).thenCompose(f -> f);
  }

  /** Whether {@code e} or a cause is the database refusing a duplicate key (SQL state 23505, H2 and PostgreSQL). */
  static boolean isUniqueViolation(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof java.sql.SQLException s && "23505".equals(s.getSQLState())) return true;
    }
    return false;
  }

  /** First-start setup: vault seed, admin key, demo tenant. Each step is idempotent. */
  private java.util.concurrent.CompletableFuture<Void> seed(TenantStore tenants, OracleSnapshot oracle, BmeParams params) {
    var w = store.writer();
    var f = w.submit(c -> {
      if (config.vaultSeedAkt() > 0) SqlLedger.fundVault(c, "vault-seed", config.vaultSeedAkt() * 1_000_000L);
      SqlLedger.updateBreaker(c, oracle, params);
      return null;
    });
    f = f.thenCompose(x -> {
      if (!config.adminKey().isEmpty()) {
        return tenants.addAdminKey(config.adminKey()).thenApply(added -> {
          if (added == TenantStore.AdminKeyAdded.REVOKED) {
            throw new IllegalStateException("ANNEAL_ADMIN_KEY names an admin key that was revoked ("
                + TenantStore.fingerprint(config.adminKey()) + "); a revoked key stays revoked: give a current admin key, or none");
          }
          if (added == TenantStore.AdminKeyAdded.TENANT_KEY) {
            throw new IllegalStateException("ANNEAL_ADMIN_KEY is a tenant's API key; an admin key must be a key of its own");
          }
          return null;
        });
      }
      return tenants.anyAdminKey().thenCompose(any -> {
        if (any) return java.util.concurrent.CompletableFuture.completedFuture(null);
        String key = "adm_" + Ids.next("").substring(12) + Ids.next("").substring(12);
        Path file = config.dataDir().resolve("admin.key");
        try {
          Files.writeString(file, key + "\n", StandardCharsets.UTF_8);
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
        LOG.info("generated an admin key; it is in " + file.toAbsolutePath());
        return tenants.addAdminKey(key).thenApply(b -> null);
      });
    });
    if (!config.demoTenant().isEmpty()) {
      String[] p = config.demoTenant().split(":", 3);
      f = f.thenCompose(x -> tenants.create(p[0], p[1])).thenCompose(t -> {
        if (t.isEmpty()) {
          throw new IllegalStateException("ANNEAL_DEMO_TENANT: a tenant named '" + p[0] + "' exists with another key"
              + " (rotated since?), or the key is another tenant's or an admin key");
        }
        long uakt = io.anneal.api.Deposits.parseAkt(p[2]);
        // genesis: the first start's demo deposit is queued like any other and converted by a mint
        // epoch run at once, so the tenant holds ACT by the time /ready answers
        return w.submit(c -> {
          Mints.Requested r = Mints.request(c, t.get().id(), "demo-tenant:" + p[0], uakt, oracle, params,
              System.currentTimeMillis());
          if (r.refusal() != null) {
            throw new IllegalStateException("ANNEAL_DEMO_TENANT: the deposit was refused: " + r.refusal() + " " + r.detail());
          }
          if (!r.duplicate()) {
            Mints.runEpoch(c, oracle, params, System.currentTimeMillis(), Integer.MAX_VALUE);
            SqlLedger.updateBreaker(c, oracle, params);
            LOG.info("demo tenant '" + p[0] + "' holds " + SqlLedger.balance(c, io.anneal.billing.ledger.Accounts.tenant(
                t.get().id()), "uact") + " uact");
          }
          return null;
        });
      });
    }
    return f.thenApply(x -> null);
  }

  private static String persistentNodeId(Path dataDir) throws IOException {
    Path f = dataDir.resolve("node-id");
    if (Files.exists(f)) return Files.readString(f, StandardCharsets.UTF_8).trim();
    String id = "node-" + Ids.next("").substring(20);
    Files.writeString(f, id + "\n", StandardCharsets.UTF_8);
    return id;
  }

  /** The service's meters (tests and tools; operators read them at /metrics). */
  public Metrics metrics() {
    return metrics;
  }

  public int httpPort() {
    return api.port();
  }

  /**
   * The scheduler verticle this instance started last (in cluster mode it may have been deposed since),
   * or null when it has not played the scheduler role (tests and tools).
   */
  public SchedulerVerticle scheduler() {
    return scheduler;
  }

  /** The worker verticle when this instance has the worker role, else null. */
  public WorkerVerticle worker() {
    return worker;
  }

  /** The API verticle when this node has the api role, else null. */
  public ApiVerticle api() {
    return api;
  }

  public String nodeId() {
    return nodeId;
  }

  /**
   * Cluster mode (ADR 19): the roles only one instance plays at a time (scheduler, billing, webhooks)
   * that this instance plays now; empty on a single instance, which plays all of its roles.
   */
  public java.util.Set<String> leasedRolesPlayed() {
    java.util.Set<String> out = new java.util.TreeSet<>();
    for (LeasedRole r : leasedRoles) {
      if (r.active()) out.add(r.role());
    }
    return out;
  }

  public Vertx vertx() {
    return vertx;
  }

  public Database database() {
    return db;
  }

  /** Refuses a ledger whose accounting epochs are of another length than configured ({@link io.anneal.billing.ledger.EpochLength}). */
  private static void requireEpochLength(Database db, long epochSeconds) {
    java.util.Optional<String> wrong;
    try (java.sql.Connection c = db.connection()) {
      wrong = io.anneal.billing.ledger.EpochLength.mismatch(c, epochSeconds);
    } catch (java.sql.SQLException e) {
      throw new IllegalStateException("could not read the ledger's accounting epochs: " + e.getMessage(), e);
    }
    if (wrong.isPresent()) throw new IllegalStateException(wrong.get());
  }

  /**
   * Graceful stop: refuse new jobs, stop placing, let running jobs finish for {@code drainSeconds}
   * (the rest are re-queued), flush the store, close.
   */
  public synchronized void stop() {
    if (stopped) return;
    stopped = true;
    ready.set(false);
    if (vertx != null) {
      try {
        if (api != null) api.stopAccepting();
        if (scheduler != null) scheduler.stopPlacing();
        if (worker != null) {
          worker.drain(config.drainSeconds()).toCompletionStage().toCompletableFuture()
              .get(config.drainSeconds() + 30L, TimeUnit.SECONDS);
        }
        // the pricing window under way is billing's before the scheduler goes (its bootstrap seconds are paid)
        if (scheduler != null) {
          scheduler.closeOpenWindow(5_000).toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
        // the Vert.x SQL client ledger settles what is queued on the event loop: before Vert.x closes
        if (ledger instanceof io.anneal.billing.ledger.SqlClientLedgerStore) ledger.close();
        if (api != null) {
          try {
            api.writeKeyUses().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
          } catch (Exception e) {
            LOG.warning("stopping: the keys' last uses seen since the last write are not recorded: " + e);
          }
        }
        vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
      } catch (Exception e) {
        LOG.warning("stopping: " + e);
      }
    }
    closeResources();
    LOG.info("stopped");
  }

  private boolean resourcesClosed;

  private synchronized void closeResources() {
    if (resourcesClosed) return;
    resourcesClosed = true;
    // roles' verticles are stopped (Vert.x closed): another instance may take them now
    leasedRoles.forEach(LeasedRole::release);
    if (ledger instanceof io.anneal.billing.JdbcLedgerStore) ledger.close(); // before the store: lanes, then its writer
    if (settlementLanes != null) settlementLanes.close(); // (closing twice is harmless)
    if (store != null) store.close();
    if (backend != null) backend.close();
    if (db != null) db.close();
  }
}
