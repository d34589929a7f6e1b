package io.anneal.api;

import io.anneal.billing.BillingAddresses;
import io.anneal.billing.bme.Bme;
import io.anneal.billing.bme.BmeException;
import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.ledger.Accounts;
import io.anneal.billing.ledger.EscrowHold;
import io.anneal.billing.ledger.LedgerRefusal;
import io.anneal.billing.ledger.Mints;
import io.anneal.billing.ledger.NodeKey;
import io.anneal.billing.ledger.Redemptions;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.ledger.SupplyView;
import io.anneal.billing.ledger.AccountStatement;
import io.anneal.billing.receipt.NodeKeys;
import io.anneal.billing.receipt.ReceiptCheck;
import io.anneal.billing.receipt.ReceiptVerifier;
import io.anneal.bus.Addresses;
import io.anneal.config.AnnealConfig;
import io.anneal.job.Ids;
import io.anneal.job.JobSpec;
import io.anneal.job.JobState;
import io.anneal.metrics.Metrics;
import io.anneal.sched.JobMessages;
import io.anneal.sched.SchedulerVerticle;
import io.anneal.store.JobRecord;
import io.anneal.store.JobStore;
import io.anneal.store.NodeLabels;
import io.anneal.store.Quarantines;
import io.anneal.store.TenantStore;
import io.anneal.store.TenantStore.Tenant;
import io.anneal.store.TenantStore.KeyOwner;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.ServerWebSocket;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import io.vertx.ext.web.handler.StaticHandler;
import java.math.BigDecimal;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Logger;

/** REST and WebSocket surface of CONTRACT.md, the web UI and the operational endpoints. */
public final class ApiVerticle extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(ApiVerticle.class.getName());
  static final String PROBLEM_JSON = "application/problem+json";

  private final AnnealConfig config;
  private final JobStore store;
  private final TenantStore tenants;
  private final Metrics metrics;
  private final PrometheusMeterRegistry prometheus;
  private final java.util.function.Supplier<OracleSnapshot> oracle;
  private final io.anneal.billing.oracle.OracleState oracleState;
  private final BmeParams bmeParams;
  private final AtomicBoolean ready;
  /**
   * Tenants by API key, as last read from the store: a policy change ({@link Addresses#TENANT_POLICY},
   * from any instance) updates them at once, and each is read again after
   * {@code cluster.tenantRecheckSeconds} (a change whose message was lost, in cluster mode, holds by then).
   */
  private final Map<String, CachedTenant> tenantByKey = new ConcurrentHashMap<>();
  /** Policy and key changes seen: a tenant read while one arrived may predate it and is read again. */
  private final AtomicLong tenantChanges = new AtomicLong();

  /** {@code validUntilMs}: until when the key authenticates (a replaced key in its grace), else MAX_VALUE. */
  private record CachedTenant(Tenant tenant, long readAtNs, long validUntilMs, boolean readOnly, String keyHash) {}
  private final Map<String, Set<WsSession>> sessionsByTenant = new ConcurrentHashMap<>();
  private volatile FleetShape shape = FleetShape.EMPTY;
  /**
   * For the queue bound (the verticle's event loop only): the scheduler's queue length and the
   * admissions it had received when it last said so, the admissions sent to it, those being committed.
   */
  private long queuedAtScheduler;
  private long submittedSeen;
  private long submittedSent;
  /** This API instance, as the scheduler counts the admissions it received from each (cluster mode). */
  private final String apiId = java.util.UUID.randomUUID().toString();
  /** The scheduler whose queue state was last received, and what had been sent when it took over. */
  private String schedulerId;
  private long seenBaseline;
  private int admitting;
  /**
   * For the per-tenant queue bound (the event loop only): the tenants the scheduler's last queue state
   * named (at least {@link SchedulerVerticle#listedAt} jobs queued) with their count; per tenant, the
   * admissions sent that the scheduler had not received then (in the order sent) and those being committed.
   */
  private Map<String, Integer> manyQueued = Map.of();
  private record Sent(long seq, String tenantId) {}
  private final java.util.ArrayDeque<Sent> unseen = new java.util.ArrayDeque<>();
  private final Map<String, Integer> unseenByTenant = new HashMap<>();
  private final Map<String, Integer> admittingByTenant = new HashMap<>();
  private HttpServer server;
  /** The certificate and key served over HTTPS now (null without TLS); replaced when their files are renewed. */
  private volatile ServingCertificate serving;
  /** The digest of certificate files that were refused: not tried again until they change once more. */
  private volatile String refusedCertificate;
  private boolean reloadingCertificate;
  /** bme simulate runs for the UI (GET /api/v1/scenarios/{id}). */
  private ScenarioRuns scenarios;
  private volatile boolean accepting = true;

  /** Provider accounts (ADR 32): their keys read their nodes' statements and payouts. */
  private final io.anneal.store.ProviderStore providers;

  public ApiVerticle(AnnealConfig config, JobStore store, TenantStore tenants, Metrics metrics,
      PrometheusMeterRegistry prometheus, java.util.function.Supplier<OracleSnapshot> oracle,
      io.anneal.billing.oracle.OracleState oracleState, BmeParams bmeParams, AtomicBoolean ready,
      io.anneal.billing.pricing.PriceBook prices) {
    this.prices = prices;
    this.config = config;
    this.store = store;
    this.tenants = tenants;
    this.providers = new io.anneal.store.ProviderStore(store, tenants);
    this.metrics = metrics;
    this.prometheus = prometheus;
    this.oracle = oracle;
    this.oracleState = oracleState;
    this.bmeParams = bmeParams;
    this.ready = ready;
  }

  /** How many members of the cluster this instance sees now (cluster mode). */
  private java.util.function.IntSupplier membersSeen = () -> 1;

  /** Where {@code GET /api/v1/cluster} reads how many members this instance sees (before deployment). */
  public ApiVerticle withClusterMembers(java.util.function.IntSupplier seen) {
    this.membersSeen = seen;
    return this;
  }

  /** The prices quoted at admission: a job is charged its class's price in force when it starts, at most this. */
  private final io.anneal.billing.pricing.PriceBook prices;

  /** Version of the Swagger UI webjar (scheduler/pom.xml) served under /webjars for /docs. */
  static final String SWAGGER_UI = "5.34.1";

  /** The API description served at {@code /openapi.yaml} (the contract's OpenAPI document). */
  static final byte[] OPENAPI = readOpenApi();
  private Router router;

  private static byte[] readOpenApi() {
    try (var in = ApiVerticle.class.getResourceAsStream("/openapi.yaml")) {
      if (in == null) throw new IllegalStateException("openapi.yaml is missing from the jar");
      return in.readAllBytes();
    } catch (java.io.IOException e) {
      throw new IllegalStateException("cannot read openapi.yaml", e);
    }
  }

  /** Every HTTP operation the router serves, as {@code "METHOD /path/{param}"} (for the OpenAPI coverage test). */
  public List<String> operations() {
    List<String> out = new java.util.ArrayList<>();
    for (var r : router.getRoutes()) {
      String path = r.getPath();
      if (path == null || path.endsWith("*") || r.methods() == null) continue;
      for (var m : r.methods()) out.add(m.name() + " " + path.replaceAll(":([A-Za-z]+)", "{$1}"));
    }
    return out;
  }

  public int port() {
    return server.actualPort();
  }

  @Override
  public Future<?> stop() {
    if (scenarios != null) scenarios.close();
    return Future.succeededFuture();
  }

  /** Refuses new jobs from now on (shutdown). */
  public void stopAccepting() {
    accepting = false;
  }

  /** How often the keys' last uses seen here are written to the store (and once more at a stop). */
  static final long KEY_USE_WRITE_MS = 30_000;

  /** Writes the keys' last uses seen here since the last write; a failure is logged and taken up next time. */
  public Future<Void> writeKeyUses() {
    return Future.fromCompletionStage(tenants.writeKeyUses(), vertx.getOrCreateContext()).<Void>mapEmpty()
        .onFailure(e -> LOG.warning("could not record when API keys were last used (tried again in 30 s): " + e.getMessage()));
  }

  boolean hasFleet() {
    return !shape.empty();
  }

  @Override
  public Future<?> start() {
    vertx.eventBus().<JsonObject>consumer(Addresses.FLEET_SHAPE, m -> shape = FleetShape.from(m.body()));
    vertx.eventBus().<JsonObject>consumer(Addresses.QUEUE_STATE, m -> {
      queuedAtScheduler = m.body().getLong("queued");
      String from = m.body().getString("scheduler");
      if (schedulerId != null && !schedulerId.equals(from)) {
        // another scheduler took over (cluster mode, ADR 19): what was sent to the last one is in the
        // store, which the new one read; only what is sent from now on may be on its way
        seenBaseline = submittedSent;
      }
      schedulerId = from;
      Long seen = m.body().getJsonObject("seen", new JsonObject()).getLong(apiId);
      submittedSeen = Math.max(seenBaseline, seen == null ? 0 : seen);
      while (!unseen.isEmpty() && unseen.peekFirst().seq() <= submittedSeen) {
        unseenByTenant.computeIfPresent(unseen.pollFirst().tenantId(), (t, n) -> n == 1 ? null : n - 1);
      }
      Map<String, Integer> many = new HashMap<>();
      m.body().getJsonObject("tenants", new JsonObject()).forEach(e -> many.put(e.getKey(), ((Number) e.getValue()).intValue()));
      manyQueued = many;
    });
    vertx.eventBus().<JsonObject>consumer(Addresses.JOB_EVENTS, m -> forwardEvent(m.body()));
    vertx.eventBus().<JsonObject>consumer(Addresses.TENANT_POLICY, m -> policyChanged(m.body()));
    vertx.eventBus().<JsonObject>consumer(Addresses.TENANT_KEY, m -> keyRotated(m.body()));
    vertx.eventBus().<JsonObject>consumer(Addresses.TENANT_READ_KEY_REVOKED, m -> readKeyEnded(m.body().getString("keyHash")));
    vertx.setPeriodic(config.tenantRecheckMs(), id -> recheckSessions());
    vertx.setPeriodic(KEY_USE_WRITE_MS, id -> writeKeyUses());
    io.micrometer.core.instrument.Gauge.builder("anneal.api.websocket.sessions", sessionsByTenant,
            m -> m.values().stream().mapToInt(Set::size).sum())
        .description("authenticated WebSocket sessions open on this instance").register(metrics.registry());
    Router router = Router.router(vertx);
    this.router = router;
    router.get("/openapi.yaml").handler(rc -> rc.response().putHeader("content-type", "application/yaml; charset=utf-8")
        .end(io.vertx.core.buffer.Buffer.buffer(OPENAPI)));
    // the API explorer: Swagger UI from its webjar, pointed at our document (its stock initializer loads a remote demo)
    router.get("/docs").handler(rc -> rc.redirect("/webjars/swagger-ui/" + SWAGGER_UI + "/index.html"));
    router.get("/webjars/swagger-ui/" + SWAGGER_UI + "/swagger-initializer.js").handler(rc -> rc.response()
        .putHeader("content-type", "text/javascript")
        .end("window.onload=()=>{window.ui=SwaggerUIBundle({url:'/openapi.yaml',dom_id:'#swagger-ui'});};"));
    router.get("/webjars/*").handler(StaticHandler.create("META-INF/resources/webjars"));
    router.get("/health").handler(rc -> rc.json(new JsonObject().put("status", "UP")));
    router.get("/ready").handler(rc -> {
      boolean ok = ready.get() && hasFleet() && accepting;
      rc.response().setStatusCode(ok ? 200 : 503);
      rc.json(new JsonObject().put("status", ok ? "READY" : "NOT_READY").put("fleet", hasFleet()));
    });
    router.get("/metrics").handler(rc -> rc.response().putHeader("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .end(prometheus.scrape()));
    router.route("/api/*").handler(BodyHandler.create().setBodyLimit(config.maxRequestBytes()).setHandleFileUploads(false));
    router.post("/api/v1/jobs").handler(this::postJob);
    router.get("/api/v1/jobs").handler(this::listJobs);
    router.get("/api/v1/jobs/:id").handler(this::getJob);
    router.delete("/api/v1/jobs/:id").handler(this::cancelJob);
    router.get("/api/v1/gpus").handler(this::gpus);
    router.delete("/api/v1/gpus/:nodeId/:device/quarantine").handler(this::liftQuarantine);
    router.put("/api/v1/gpus/:nodeId/:device/quarantine").handler(this::quarantineGpu);
    router.put("/api/v1/gpus/:nodeId/quarantine").handler(this::quarantineNode);
    router.get("/api/v1/supply").handler(this::supply);
    router.get("/api/v1/prices").handler(this::prices);
    router.get("/api/v1/receipts/:jobId").handler(this::receipt);
    router.get("/api/v1/epochs").handler(this::epochs);
    scenarios = new ScenarioRuns(vertx);
    router.get("/api/v1/scenarios").handler(rc -> rc.json(ScenarioRuns.list()));
    router.get("/api/v1/scenarios/:id").handler(this::scenario);
    router.get("/api/v1/refused-receipts").handler(this::refusedReceipts);
    router.get("/api/v1/nodes/:nodeId/labels").handler(this::nodeLabels);
    router.put("/api/v1/nodes/:nodeId/labels").handler(this::labelNode);
    router.get("/api/v1/nodes/:nodeId/keys").handler(this::nodeKeys);
    router.post("/api/v1/nodes/:nodeId/keys").handler(this::rotateNodeKey);
    router.post("/api/v1/nodes/:nodeId/keys/:fingerprint/revoke").handler(this::revokeNodeKey);
    router.get("/api/v1/ledger/audit").handler(this::ledgerAudit);
    router.get("/api/v1/cluster").handler(this::cluster);
    router.post("/api/v1/backups").handler(this::backup);
    router.get("/api/v1/me").handler(this::me);
    router.post("/api/v1/tenants").handler(this::createTenant);
    router.get("/api/v1/tenants").handler(this::listTenants);
    router.get("/api/v1/tenants/:id").handler(this::getTenant);
    router.patch("/api/v1/tenants/:id").handler(this::patchTenant);
    router.post("/api/v1/tenants/:id/keys").handler(this::rotateTenantKey);
    router.post("/api/v1/tenants/:id/read-keys").handler(this::addReadKey);
    router.get("/api/v1/tenants/:id/read-keys").handler(this::readKeys);
    router.delete("/api/v1/tenants/:id/read-keys/:fingerprint").handler(this::revokeReadKey);
    router.get("/api/v1/admin-keys").handler(this::adminKeys);
    router.post("/api/v1/admin-keys").handler(this::addAdminKey);
    router.delete("/api/v1/admin-keys/:fingerprint").handler(this::revokeAdminKey);
    router.post("/api/v1/tenants/:id/deposits").handler(this::deposit);
    router.get("/api/v1/tenants/:id/deposits/:reference").handler(this::depositStatus);
    router.get("/api/v1/tenants/:id/balance").handler(this::balance);
    router.get("/api/v1/tenants/:id/statement").handler(this::statement);
    router.get("/api/v1/tenants/:id/statement/:txId").handler(this::statementEntry);
    router.post("/api/v1/providers/:nodeId/payouts").handler(this::requestPayout);
    router.get("/api/v1/providers/:nodeId/payouts").handler(this::payouts);
    router.get("/api/v1/providers/:nodeId/statement").handler(this::providerStatement);
    router.post("/api/v1/provider-accounts").handler(this::createProviderAccount);
    router.get("/api/v1/provider-accounts").handler(this::providerAccounts);
    router.get("/api/v1/provider-accounts/me").handler(this::myProviderAccount);
    router.get("/api/v1/provider-accounts/:id").handler(this::providerAccount);
    router.put("/api/v1/provider-accounts/:id/nodes").handler(this::setProviderNodes);
    router.post("/api/v1/provider-accounts/:id/keys").handler(this::replaceProviderKey);
    router.get("/api/v1/providers/:nodeId/statement/:txId").handler(this::providerStatementEntry);
    router.post("/api/v1/bootstrap-fund/grants").handler(this::grant);
    router.get("/api/v1/bootstrap-fund/grants/:reference").handler(this::grantStatus);
    router.get("/api/v1/bootstrap-fund/windows").handler(this::bootstrapWindows);
    router.post("/api/v1/webhooks").handler(this::createWebhook);
    router.get("/api/v1/webhooks").handler(this::listWebhooks);
    router.delete("/api/v1/webhooks/:id").handler(this::deleteWebhook);
    router.get("/api/v1/webhooks/:id/deliveries").handler(this::webhookDeliveries);
    router.route("/api/*").handler(rc -> fail(rc, Problem.notFound("no such endpoint: " + rc.request().method() + " " + rc.request().path())));
    router.route("/*").handler(StaticHandler.create("webroot").setCachingEnabled(false));
    router.route().failureHandler(this::onFailure);

    HttpServerOptions opts = new HttpServerOptions().setPort(config.httpPort()).setHost("0.0.0.0")
        .setMaxWebSocketFrameSize(config.maxRequestBytes()).setMaxWebSocketMessageSize(config.maxRequestBytes());
    if (config.httpTls() != null) { // ADR 27: HTTPS and WSS only, on the same port
      try {
        // read now, so that a bad file is named (Vert.x's own error names none)
        serving = ServingCertificate.load(vertx, config.httpTls().certPath(), config.httpTls().keyPath());
      } catch (Exception e) {
        return Future.failedFuture(new IllegalArgumentException("HTTPS: the certificate " + config.httpTls().certPath()
            + " and key " + config.httpTls().keyPath() + " cannot be used: " + e.getMessage(), e));
      }
      opts.setSsl(true).setKeyCertOptions(serving.options());
      io.micrometer.core.instrument.Gauge.builder("anneal.tls.certificate.not.after", this,
              v -> v.serving.leaf().getNotAfter().getTime() / 1000.0)
          .description("when the certificate the API serves HTTPS with expires (seconds since the epoch)")
          .baseUnit("seconds").register(metrics.registry());
      if (config.httpTls().reloadCheckMs() > 0) vertx.setPeriodic(config.httpTls().reloadCheckMs(), id -> reloadCertificate());
    }
    server = vertx.createHttpServer(opts);
    server.webSocketHandler(this::onWebSocket);
    server.requestHandler(router);
    return server.listen().onSuccess(s -> LOG.info((config.httpTls() != null ? "HTTPS" : "HTTP") + " listening on port "
        + s.actualPort()));
  }

  // ------------------------------------------------------------------ errors

  /** What a store failure answers, on REST and WebSocket alike. */
  static Problem storeUnavailable() {
    return new Problem("unavailable", 503, "Store unavailable", "the store could not be reached; retry later (a write may have"
        + " been made before the store failed: a submit retried with the same idempotency key (the Idempotency-Key header,"
        + " or idempotencyKey on the WebSocket) is not made twice)");
  }

  /** A store that failed or could not be reached (not a refusal): somewhere in the causes, a store or SQL exception. */
  static boolean storeFailure(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof JobStore.StoreException || c instanceof java.sql.SQLException) return true;
    }
    return false;
  }

  private void onFailure(RoutingContext rc) {
    Throwable t = rc.failure();
    Problem p;
    if (t instanceof Problem prob) {
      p = prob;
    } else if (rc.statusCode() == 413) {
      p = new Problem("payload-too-large", 413, "Request too large", "the body exceeds " + config.maxRequestBytes() + " bytes");
    } else if (storeFailure(t)) {
      LOG.warning("store failure on " + rc.request().path() + ": " + t.getMessage());
      p = storeUnavailable();
    } else if (rc.statusCode() > 0 && rc.statusCode() < 500) {
      p = new Problem("http-" + rc.statusCode(), rc.statusCode(), "Request refused", t == null ? null : t.getMessage());
    } else {
      LOG.log(java.util.logging.Level.WARNING, "internal error on " + rc.request().path(), t);
      p = new Problem("internal", 500, "Internal error", "the request failed inside the service; see its log");
    }
    if (rc.response().ended()) return;
    rc.response().setStatusCode(p.status()).putHeader("content-type", PROBLEM_JSON);
    if (p.status() == 503 && p.slug().equals("overloaded")) rc.response().putHeader("Retry-After", "1");
    if (p.slug().equals("tenant-queue-full")) {
      rc.response().putHeader("Retry-After", "5"); // the tenant's jobs start as GPUs free up: no better hint
    } else if (p.status() == 429) {
      // the mint queue drains at each mint epoch
      rc.response().putHeader("Retry-After", Long.toString(Math.max(1, config.minEpochTicks() * config.tickSeconds())));
    }
    rc.response().end(p.toJson().encode());
  }

  private static void fail(RoutingContext rc, Throwable t) {
    if (t instanceof java.util.concurrent.CompletionException && t.getCause() != null) t = t.getCause();
    rc.fail(t);
  }

  private static JsonObject parseBody(Buffer body) {
    if (body == null || body.length() == 0) throw Problem.malformedJson("the request body is empty; a JSON object is expected");
    String text = body.toString(java.nio.charset.StandardCharsets.UTF_8).stripLeading();
    if (!text.startsWith("{")) throw Problem.malformedJson("a JSON object is expected");
    try {
      return new JsonObject(text);
    } catch (DecodeException | ClassCastException e) {
      throw Problem.malformedJson("the body is not valid JSON: " + e.getMessage());
    }
  }

  private static void checkFields(JsonObject o, Set<String> allowed) {
    JsonArray errors = new JsonArray();
    for (String k : o.fieldNames()) {
      if (!allowed.contains(k)) {
        errors.add(new JsonObject().put("field", k).put("code", "unknown-field").put("message", "unknown field '" + k + "'"));
      }
    }
    if (!errors.isEmpty()) throw Problem.invalid("unknown-field", "Unknown field", errors);
  }

  // ------------------------------------------------------------------ auth

  private static Optional<String> bearer(String header) {
    if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) return Optional.empty();
    String key = header.substring(7).trim();
    return key.isEmpty() ? Optional.empty() : Optional.of(key);
  }

  /**
   * The tenant a request's key authenticates. A read-only key (ADR 30) authenticates only requests that
   * change nothing (GET, HEAD): any other is refused here, whatever the endpoint, so that an endpoint added
   * later is closed to read-only keys unless it only reads.
   */
  private Future<Tenant> tenantOf(RoutingContext rc, String apiKey) {
    return ownerOf(apiKey, 3).compose(o -> {
      io.vertx.core.http.HttpMethod m = rc.request().method();
      if (o.readOnly() && m != io.vertx.core.http.HttpMethod.GET && m != io.vertx.core.http.HttpMethod.HEAD) {
        return Future.failedFuture(readOnlyKey(m + " " + rc.request().path()));
      }
      return Future.succeededFuture(o.tenant());
    });
  }

  /** A read-only key's refusal of {@code what}. */
  static Problem readOnlyKey(String what) {
    return new Problem("read-only-key", 403, "Read-only key", "this key only reads; " + what + " needs the tenant's API key");
  }

  /** The tenant a key authenticates, and until when (a replaced key in its grace), for WebSocket sessions. */
  Future<KeyOwner> authenticate(String apiKey) {
    return ownerOf(apiKey, 3);
  }

  private Future<KeyOwner> ownerOf(String apiKey, int reads) {
    if (apiKey == null) return Future.failedFuture(Problem.unauthorized());
    CachedTenant cached = tenantByKey.get(apiKey);
    long nowMs = System.currentTimeMillis();
    if (cached != null && System.nanoTime() - cached.readAtNs() < config.tenantRecheckMs() * 1_000_000
        && nowMs < cached.validUntilMs()) {
      tenants.keyUsed(cached.keyHash(), nowMs);
      return Future.succeededFuture(new KeyOwner(cached.tenant(), cached.validUntilMs(), cached.readOnly()));
    }
    long changes = tenantChanges.get();
    long at = System.nanoTime();
    return Future.fromCompletionStage(tenants.ownerOf(apiKey), vertx.getOrCreateContext()).compose(o -> {
      if (o.isEmpty()) {
        tenantByKey.remove(apiKey);
        return Future.failedFuture(Problem.unauthorized());
      }
      if (tenantChanges.get() != changes) {
        // a policy or key changed while this was read: the answer may predate it
        return reads > 1 ? ownerOf(apiKey, reads - 1) : Future.succeededFuture(o.get());
      }
      String hash = TenantStore.hashKey(apiKey);
      tenants.keyUsed(hash, System.currentTimeMillis());
      tenantByKey.put(apiKey, new CachedTenant(o.get().tenant(), at, o.get().validUntilMs(), o.get().readOnly(), hash));
      return Future.succeededFuture(o.get());
    });
  }

  /** A tenant's weight or GPU quota changed (on any instance): the keys and sessions of it here follow. */
  private void policyChanged(JsonObject change) {
    tenantChanges.incrementAndGet();
    String id = change.getString("tenantId");
    double weight = change.getDouble("weight", 1.0);
    Integer quota = change.getInteger("gpuQuota");
    Integer maxQueued = change.getInteger("maxQueuedJobs");
    Map<String, String> labels = NodeLabels.fromJson(change.getJsonObject("nodeLabels"));
    tenantByKey.replaceAll((key, c) -> c.tenant().id().equals(id)
        ? new CachedTenant(c.tenant().withPolicy(weight, quota, maxQueued, labels), c.readAtNs(), c.validUntilMs(), c.readOnly(),
            c.keyHash()) : c);
    Set<WsSession> sessions = sessionsByTenant.get(id);
    if (sessions != null) sessions.forEach(ws -> ws.policyChanged(weight, quota, maxQueued, labels));
  }

  /**
   * A tenant's API key was replaced (on any instance): the old key is forgotten here (read again if it is
   * in its grace), its sessions closed, or closed when its grace ends.
   */
  private void keyRotated(JsonObject change) {
    tenantChanges.incrementAndGet();
    String id = change.getString("tenantId");
    String hash = change.getString("keyHash");
    String previous = change.getString("previousKeyHash");
    long until = change.getLong("previousKeyValidUntil", 0L);
    tenantByKey.entrySet().removeIf(e -> e.getValue().tenant().id().equals(id) && !TenantStore.hashKey(e.getKey()).equals(hash));
    Set<WsSession> sessions = sessionsByTenant.get(id);
    if (sessions != null) List.copyOf(sessions).forEach(ws -> ws.keyRotated(hash, previous, until));
  }

  /** Runs {@code action} on this verticle's context in {@code delayMs} (a session's key grace ending). */
  long timer(long delayMs, Runnable action) {
    return vertx.setTimer(Math.max(1, delayMs), id -> action.run());
  }

  void cancelTimer(long id) {
    vertx.cancelTimer(id);
  }

  private boolean recheckingSessions;

  /**
   * Reads again the tenants of the WebSocket sessions open here (every {@code cluster.tenantRecheckSeconds}):
   * a key rotation or policy change whose message this instance missed (a partition, ADR 19) still closes
   * the sessions of the replaced key, and still reaches the others, by then.
   */
  private void recheckSessions() {
    sessionsByTenant.values().removeIf(Set::isEmpty); // this context only: no session is being added meanwhile
    if (recheckingSessions || sessionsByTenant.isEmpty()) return;
    recheckingSessions = true;
    Set<String> ids = Set.copyOf(sessionsByTenant.keySet());
    // the read-only keys of the sessions opened with one: a revocation this instance was not told of, or an
    // expiry, closes them by the next look too; and a session open is its key in use (ADR 31)
    Set<String> readOnly = new java.util.HashSet<>();
    long now = System.currentTimeMillis();
    sessionsByTenant.values().forEach(set -> set.forEach(ws -> {
      if (ws.readOnlyKeyHash() != null) readOnly.add(ws.readOnlyKeyHash());
      if (ws.keyHash() != null) tenants.keyUsed(ws.keyHash(), now);
    }));
    if (!readOnly.isEmpty()) {
      Future.fromCompletionStage(tenants.validReadKeys(readOnly), vertx.getOrCreateContext()).onSuccess(valid -> {
        for (String h : readOnly) {
          if (!valid.contains(h)) readKeyEnded(h);
        }
      });
    }
    Future.fromCompletionStage(tenants.withKeyHashes(ids), vertx.getOrCreateContext()).onComplete(ar -> {
      recheckingSessions = false;
      if (ar.failed()) return; // the store is out of reach: the next look
      for (String id : ids) {
        Set<WsSession> sessions = sessionsByTenant.get(id);
        if (sessions == null) continue;
        var current = ar.result().get(id);
        for (WsSession ws : List.copyOf(sessions)) {
          if (current == null) {
            ws.keyRotated("", null, 0); // the tenant is gone: no key of it authenticates
          } else {
            ws.keyRotated(current.currentHash(), current.previousHash(), current.previousUntilMs());
            ws.policyChanged(current.tenant().weight(), current.tenant().gpuQuota(), current.tenant().maxQueuedJobs(),
                current.tenant().nodeLabels());
          }
        }
      }
    });
  }

  private Future<Tenant> tenant(RoutingContext rc) {
    return tenantOf(rc, bearer(rc.request().getHeader("Authorization")).orElse(null));
  }

  private Future<Void> admin(RoutingContext rc) {
    Optional<String> key = bearer(rc.request().getHeader("Authorization"));
    if (key.isEmpty()) return Future.failedFuture(Problem.unauthorized());
    return Future.fromCompletionStage(tenants.isAdminKey(key.get()), vertx.getOrCreateContext())
        .compose(ok -> ok ? Future.<Void>succeededFuture() : Future.failedFuture(Problem.forbidden("an admin key is required")));
  }

  // ------------------------------------------------------------------ jobs

  /**
   * Jobs queued now, for the queue bound: the scheduler's count when it last published it, plus
   * admissions sent to it that it had not yet received then, plus admissions still being committed.
   * Never below the true count (a job placed or cancelled since still counts until the next
   * publication), so the bound holds under any burst, on REST and WebSocket alike.
   */
  private long queuedEstimate() {
    return queuedAtScheduler + Math.max(0, submittedSent - submittedSeen) + admitting;
  }

  /**
   * A tenant's jobs queued now, at most: its count in the scheduler's last queue state (or, not named
   * there, one less than the count at which it would be), plus its admissions sent since and being
   * committed. Like {@link #queuedEstimate}, never below the true count of what this instance admitted.
   */
  private long tenantQueuedEstimate(Tenant tenant) {
    Integer listed = manyQueued.get(tenant.id());
    long base = listed != null ? listed : SchedulerVerticle.listedAt(queueLimitOf(tenant)) - 1;
    return base + unseenByTenant.getOrDefault(tenant.id(), 0) + admittingByTenant.getOrDefault(tenant.id(), 0);
  }

  /** How many jobs the tenant may have queued: its own bound (a tenant policy), else the service's. */
  private int queueLimitOf(Tenant tenant) {
    return tenant.maxQueuedJobs() != null ? tenant.maxQueuedJobs() : config.maxQueuedJobsPerTenant();
  }

  /** Validates, prices, escrows and durably queues one job; shared by REST and WebSocket. */
  Future<JsonObject> submit(Tenant tenant, JsonObject body, String idempotencyKey) {
    if (!accepting) return Future.failedFuture(new Problem("shutting-down", 503, "Shutting down", "this node is stopping; retry on another"));
    JobSpec.Parsed parsed = JobSpec.parse(body.getMap(), new JobSpec.Limits(config.maxGpusPerJob(), config.maxSecondsPerJob()));
    if (!parsed.ok()) {
      JsonArray errors = new JsonArray();
      boolean unknown = false;
      for (JobSpec.FieldError e : parsed.errors()) {
        errors.add(new JsonObject().put("field", e.field()).put("code", e.code()).put("message", e.message()));
        unknown |= e.code().equals("unknown-field");
      }
      metrics.jobsRefused.increment();
      return Future.failedFuture(unknown ? Problem.invalid("unknown-field", "Unknown field", errors)
          : Problem.invalid("invalid-job", "Invalid job", errors));
    }
    JobSpec asked = parsed.spec();
    if (!tenant.nodeLabels().isEmpty()) {
      // the tenant's policy asks every job of it for these labels (ADR 29): added to the job's own, never overridden
      JsonArray conflicts = new JsonArray();
      Map<String, String> labels = new java.util.TreeMap<>(asked.nodeLabels());
      tenant.nodeLabels().forEach((k, v) -> {
        String own = labels.put(k, v);
        if (own != null && !own.equals(v)) {
          conflicts.add(new JsonObject().put("field", "nodeLabels." + k).put("code", "tenant-policy").put("message",
              "this tenant's jobs run only on nodes labelled " + k + "=" + v + " (its policy), not " + k + "=" + own));
        }
      });
      if (!conflicts.isEmpty()) {
        metrics.jobsRefused.increment();
        return Future.failedFuture(Problem.invalid("invalid-job", "Invalid job", conflicts));
      }
      asked = asked.withNodeLabels(labels);
    }
    JobSpec spec = asked;
    if (tenant.gpuQuota() != null && spec.gpus() > tenant.gpuQuota()) {
      metrics.jobsRefused.increment();
      return Future.failedFuture(new Problem("unsatisfiable", 422, "No node can ever run this job",
          "the job asks for " + spec.gpus() + " GPU(s); this tenant's GPU quota is " + tenant.gpuQuota()));
    }
    Fit cached = fit(shape, spec);
    // the shape the API holds is the scheduler's last publication, which may not have arrived yet for a
    // node that just joined: a refusal is made on the scheduler's shape of now (refusals are rare)
    Future<Fit> fit = cached.refusal() == null ? Future.succeededFuture(cached)
        : vertx.eventBus().<JsonObject>request(Addresses.FLEET_SHAPE_NOW, new JsonObject(), SHAPE_NOW_TIMEOUT)
            .map(m -> fit(FleetShape.from(m.body()), spec))
            .otherwise(cached);
    // a completed future composes at once: the queue bound below and admit's count of admissions in
    // flight are taken in one step on the event loop, as before
    return fit.compose(f -> {
      if (f.refusal() != null) {
        metrics.jobsRefused.increment();
        return Future.failedFuture(f.refusal());
      }
      long queued = queuedEstimate();
      if (queued >= config.maxQueuedJobs()) {
        metrics.jobsRefused.increment();
        return Future.failedFuture(new Problem("overloaded", 503, "Overloaded, retry after 1 s",
            "the queue holds " + queued + " jobs (limit " + config.maxQueuedJobs() + ")"));
      }
      long mine = tenantQueuedEstimate(tenant);
      int limit = queueLimitOf(tenant);
      if (mine >= limit) {
        metrics.jobsRefused.increment();
        return Future.failedFuture(new Problem("tenant-queue-full", 429, "Too many jobs queued",
            "this tenant has up to " + mine + " jobs queued (limit " + limit + (tenant.maxQueuedJobs() != null
                ? " for this tenant" : " per tenant") + "); submit more as they start, or cancel some"));
      }
      return admit(tenant, spec, f, idempotencyKey);
    });
  }

  private static final io.vertx.core.eventbus.DeliveryOptions SHAPE_NOW_TIMEOUT =
      new io.vertx.core.eventbus.DeliveryOptions().setSendTimeout(2_000);

  /**
   * The GPU class and price a job is quoted at, or why no node of the fleet can ever run it;
   * {@code outOfService}: it fits only GPUs quarantined now, and waits until they are back in service.
   */
  private record Fit(String gpuClass, long price, Problem refusal, boolean outOfService) {
    static Fit refused(String detail) {
      return new Fit(null, -1, new Problem("unsatisfiable", 422, "No node can ever run this job", detail), false);
    }
  }

  /** Matches a job against a fleet shape: its kind, its parameter limits, then the dearest class that fits it. */
  private Fit fit(FleetShape whole, JobSpec spec) {
    if (!whole.kinds().contains(spec.kind())) {
      return new Fit(null, -1, new Problem("unsupported-kind", 422, "Kind not available",
          "no node of this fleet runs '" + spec.kind() + "' jobs yet (available: " + String.join(", ", whole.kinds()) + ")"), false);
    }
    for (Map.Entry<String, Long> limit : whole.limits().entrySet()) {
      if (!limit.getKey().startsWith(spec.kind() + ".")) continue;
      String param = limit.getKey().substring(spec.kind().length() + 1);
      if (!(spec.params().get(param) instanceof Number asked)) continue;
      if (asked.longValue() > limit.getValue()) {
        return Fit.refused("params." + param + " is " + asked.longValue() + "; the largest this fleet's nodes run is "
            + limit.getValue());
      }
    }
    // only the nodes carrying the labels it asks for (ADR 29)
    FleetShape fs = whole.carrying(spec.nodeLabels());
    if (fs == null) {
      return Fit.refused("no node carries the labels " + labelText(spec.nodeLabels()) + " (an operator gives nodes labels;"
          + " GET /api/v1/gpus shows them" + (whole.labelled().isEmpty() ? ", and no node has any now)" : ")"));
    }
    // the dearest class that fits with the GPUs in service; else, with the quarantined GPUs back (an
    // operator's cordon or a failing device: the job waits for them, as the jobs queued before do)
    Fit inService = dearestFit(fs, spec, 0);
    if (inService != null) return inService;
    Fit installed = dearestFit(fs, spec, 1);
    if (installed != null) return installed;
    int largest = 0;
    int largestInstalled = 0;
    for (int[] v : fs.classes().values()) {
      largest = Math.max(largest, v[0]);
      largestInstalled = Math.max(largestInstalled, v[1]);
    }
    String what = spec.gpuClass() == null ? "" : " of class " + spec.gpuClass();
    return Fit.refused("the job asks for " + spec.gpus() + " GPU(s)" + what
        + (spec.memoryMiB() > 0 ? " with " + spec.memoryMiB() + " MiB each" : "")
        + "; the largest node" + (spec.nodeLabels().isEmpty() ? "" : " with the labels " + labelText(spec.nodeLabels()))
        + " has " + largestInstalled + " GPU(s)" + (largest < largestInstalled ? " (" + largest + " in service)" : "")
        + " (classes: " + String.join(", ", fs.classes().keySet()) + ")");
  }

  /** Labels as a client wrote them: {@code tier=certified, region=eu}. */
  private static String labelText(Map<String, String> labels) {
    StringBuilder b = new StringBuilder();
    labels.forEach((k, v) -> b.append(b.length() == 0 ? "" : ", ").append(k).append('=').append(v));
    return b.toString();
  }

  /** The dearest class priced now that fits the job, counting GPUs in service ({@code count} 0) or all (1); null if none. */
  private Fit dearestFit(FleetShape fs, JobSpec spec, int count) {
    String cls = null;
    long price = -1;
    Map<String, Long> current = prices.current();
    for (Map.Entry<String, int[]> e : fs.classes().entrySet()) {
      if (spec.gpuClass() != null && !spec.gpuClass().equals(e.getKey())) continue;
      if (e.getValue()[count] < spec.gpus() || fs.memoryMiB().get(e.getKey()) < spec.memoryMiB()) continue;
      Long p = current.get(e.getKey());
      if (p == null) continue;
      if (p > price) {
        price = p;
        cls = e.getKey();
      }
    }
    return cls == null ? null : new Fit(cls, price, null, count == 1);
  }

  private static final String WAITING_FOR_SERVICE = "no GPU that can run it is in service now (quarantined by an operator"
      + " or after device failures); it waits until enough are back in service";

  /** A job as the API shows it; a queued one that only GPUs out of service could run says so ({@code waiting}). */
  private JsonObject jobView(JobRecord j) {
    JsonObject o = JobMessages.toApi(j);
    if (j.state() != JobState.QUEUED) return o;
    Map<String, String> asked = NodeLabels.fromJson(o.getJsonObject("nodeLabels"));
    FleetShape fs = shape.carrying(asked);
    if (fs == null) {
      // admitted when a node carried them; an operator has taken them off since
      return o.put("waiting", "no node carries the labels " + labelText(asked) + " now; it waits until one does");
    }
    boolean inService = false;
    boolean installed = false;
    for (Map.Entry<String, int[]> e : fs.classes().entrySet()) {
      if (j.gpuClass() != null && !j.gpuClass().equals(e.getKey())) continue;
      inService |= e.getValue()[0] >= j.gpus();
      installed |= e.getValue()[1] >= j.gpus();
    }
    return !inService && installed ? o.put("waiting", WAITING_FOR_SERVICE) : o;
  }

  /** Prices, escrows and durably queues a job the fleet can run. */
  private Future<JsonObject> admit(Tenant tenant, JobSpec spec, Fit fit, String idempotencyKey) {
    final long quoted = fit.price();
    final String quotedClass = fit.gpuClass();
    long escrow = SqlLedger.maxCostUact(spec.gpus(), spec.maxSeconds(), quoted);
    long now = System.currentTimeMillis();
    String id = Ids.next("j_");
    JobRecord rec = new JobRecord(id, tenant.id(), spec.kind(), new JsonObject(spec.toMap()).encode(), spec.gpus(),
        spec.gpuClass(), spec.priority(), spec.maxSeconds(), JobState.QUEUED, null, null, null, null, null, 0, null, escrow, quoted,
        null, null, now, 0, 0, 0, 0);
    EscrowHold hold = new EscrowHold(id, tenant.id(), escrow, quoted, quotedClass, spec.gpus());
    OracleSnapshot akt = oracle.get();
    if (config.aktDirect() && akt.healthy() && akt.priceAkt().signum() > 0) {
      // bme-spec 16.5: taken by the ledger only while halted and only if the tenant's ACT falls short
      hold = hold.offeringAkt(akt.priceAkt().toString());
    }
    admitting++;
    admittingByTenant.merge(tenant.id(), 1, Integer::sum);
    Future<JobStore.SubmitResult> committed = Future.fromCompletionStage(store.submit(rec, idempotencyKey, hold),
        vertx.getOrCreateContext()).andThen(x -> {
          admitting--;
          admittingByTenant.computeIfPresent(tenant.id(), (t, n) -> n == 1 ? null : n - 1);
        });
    return committed.compose(r -> {
      if (!r.accepted()) {
        metrics.jobsRefused.increment();
        if (r.refusal() == LedgerRefusal.INSUFFICIENT_FUNDS) {
          boolean halted = r.detail() != null && r.detail().contains("AKT-direct");
          return Future.failedFuture(new Problem("insufficient-funds", 402, "Not enough ACT",
              "the job may cost up to " + escrow + " uact (" + spec.gpus() + " GPU x " + spec.maxSeconds() + " s at "
                  + quoted + " uact/GPU-hour); " + (halted
                      ? "the BME is halted, so ACT top-ups are refused: deposit AKT with \"direct\": true to pay jobs"
                          + " from it (" + r.detail() + "), or lower maxSeconds"
                      : "deposit AKT or lower maxSeconds"),
              new JsonObject().put("requiredUact", escrow)));
        }
        return Future.failedFuture(new Problem("refused", 409, "Refused", r.detail()));
      }
      JsonObject out = new JsonObject().put("id", r.jobId()).put("state", r.state().name());
      if (r.duplicate()) return Future.succeededFuture(out.put("duplicate", true));
      metrics.jobsSubmitted.increment();
      JsonObject msg = JobMessages.fromSpec(rec, spec);
      submittedSent++;
      unseen.addLast(new Sent(submittedSent, tenant.id()));
      unseenByTenant.merge(tenant.id(), 1, Integer::sum);
      vertx.eventBus().send(Addresses.JOB_SUBMITTED, msg.put("api", apiId).put("apiSeq", submittedSent));
      out.put("priceUactPerGpuHour", quoted).put("quotedGpuClass", quotedClass);
      if (fit.outOfService()) out.put("waiting", WAITING_FOR_SERVICE);
      if (r.heldUakt() > 0) {
        // paid from the tenant's AKT deposit while the BME is halted (bme-spec 16.5)
        return Future.succeededFuture(out.put("payment", "akt-direct").put("escrowUakt", r.heldUakt())
            .put("aktPrice", akt.priceAkt().toString()).put("maxCostUact", escrow));
      }
      return Future.succeededFuture(out.put("escrowUact", escrow));
    });
  }

  private void postJob(RoutingContext rc) {
    tenant(rc).compose(t -> submit(t, parseBody(rc.body().buffer()), rc.request().getHeader("Idempotency-Key")))
        .onSuccess(out -> {
          rc.response().setStatusCode(out.getBoolean("duplicate", false) ? 200 : 202)
              .putHeader("Location", "/api/v1/jobs/" + out.getString("id"));
          rc.json(out);
        })
        .onFailure(e -> fail(rc, e));
  }

  /**
   * The tenant's jobs, newest first, a page at a time: {@code limit} (1..1000, 200 by default), after
   * the job {@code before} (the previous page's {@code next}), only those in {@code state} if given.
   */
  private void listJobs(RoutingContext rc) {
    Integer limit = countParam(rc, "limit", 200, 1000);
    if (limit == null) return;
    String stateParam = rc.queryParams().get("state");
    JobState state = null;
    if (stateParam != null) {
      try {
        state = JobState.valueOf(stateParam);
      } catch (IllegalArgumentException e) {
        fail(rc, new Problem("invalid-query", 422, "Invalid query", "state must be one of " + java.util.Arrays.toString(JobState.values())));
        return;
      }
    }
    JobState only = state;
    String before = rc.queryParams().get("before");
    tenant(rc).compose(t -> Future.fromCompletionStage(store.jobsOfTenant(t.id(), limit, before, only), vertx.getOrCreateContext()))
        .onSuccess(page -> {
          JsonArray a = new JsonArray();
          page.jobs().forEach(j -> a.add(jobView(j)));
          rc.json(new JsonObject().put("jobs", a).put("next", page.next()));
        })
        .onFailure(e -> fail(rc, e));
  }

  private Future<JobRecord> ownJob(Tenant t, String jobId) {
    return Future.fromCompletionStage(store.job(jobId), vertx.getOrCreateContext()).compose(j -> {
      if (j.isEmpty() || !j.get().tenantId().equals(t.id())) return Future.failedFuture(noJob(jobId));
      return Future.succeededFuture(j.get());
    });
  }

  private Problem noJob(String jobId) {
    if (config.finishedJobRetentionMs() == 0) return Problem.notFound("no job " + jobId);
    return Problem.notFound("no job " + jobId + " (finished jobs are removed " + config.finishedJobRetentionMs() / 86_400_000.0
        + " day(s) after they end; the receipts of a job that ran stay at /api/v1/receipts/" + jobId + ")");
  }

  /**
   * A job's state for its receipts: from its row, or, once retention removed the row, SETTLED if the
   * ledger holds settled runs of it charged to this tenant.
   */
  private Future<String> receiptJobState(Tenant t, String jobId) {
    return ownJob(t, jobId).map(j -> j.state().name()).recover(e -> {
      if (!(e instanceof Problem p) || p.status() != 404) return Future.failedFuture(e);
      return Future.fromCompletionStage(store.read(c -> SqlLedger.tenantOfSettledJob(c, jobId)), vertx.getOrCreateContext())
          .compose(owner -> owner.filter(t.id()::equals).isPresent() ? Future.succeededFuture(JobState.SETTLED.name())
              : Future.failedFuture(e));
    });
  }

  private void getJob(RoutingContext rc) {
    tenant(rc).compose(t -> ownJob(t, rc.pathParam("id")))
        .onSuccess(j -> rc.json(jobView(j)))
        .onFailure(e -> fail(rc, e));
  }

  private Future<JsonObject> cancel(Tenant t, String jobId) {
    return ownJob(t, jobId).compose(j -> vertx.eventBus()
        .<JsonObject>request(Addresses.JOB_CANCEL, new JsonObject().put("jobId", jobId).put("tenantId", t.id()))
        .map(m -> new JsonObject().put("id", jobId).put("result", m.body().getString("result"))));
  }

  private void cancelJob(RoutingContext rc) {
    tenant(rc).compose(t -> cancel(t, rc.pathParam("id")))
        .onSuccess(out -> rc.response().setStatusCode(202).end(out.encode()))
        .onFailure(e -> fail(rc, e));
  }

  /**
   * Puts a quarantined device back in service (admin; e.g. after the GPU was replaced or reset):
   * 204, or 404 when that device is not quarantined.
   */
  private void liftQuarantine(RoutingContext rc) {
    String nodeId = rc.pathParam("nodeId");
    int device;
    try {
      device = Integer.parseInt(rc.pathParam("device"));
    } catch (NumberFormatException e) {
      fail(rc, Problem.notFound("no device '" + rc.pathParam("device") + "' (a device is its index, e.g. 0)"));
      return;
    }
    admin(rc).compose(v -> Future.fromCompletionStage(store.writer().submit(c -> Quarantines.lift(c, nodeId, device)),
        vertx.getOrCreateContext())).onSuccess(lifted -> {
          if (!lifted) {
            fail(rc, Problem.notFound("GPU " + nodeId + "/" + device + " is not quarantined"));
            return;
          }
          vertx.eventBus().publish(Addresses.DEVICE_RESTORED, new JsonObject().put("nodeId", nodeId).put("device", device));
          rc.response().setStatusCode(204).end();
        }).onFailure(e -> fail(rc, e));
  }

  /**
   * Admin: takes a GPU out of service (a suspected fault, maintenance): nothing new is placed on it, a
   * job running on it runs to its end; stored, so it outlives restarts, until lifted (DELETE). Body:
   * {@code {"reason": "..."}} (optional). 201, or 200 when it was quarantined already (its first reason kept).
   */
  private void quarantineGpu(RoutingContext rc) {
    String nodeId = rc.pathParam("nodeId");
    int device;
    try {
      device = Integer.parseInt(rc.pathParam("device"));
    } catch (NumberFormatException e) {
      fail(rc, Problem.notFound("no device '" + rc.pathParam("device") + "' (a device is its index, e.g. 0)"));
      return;
    }
    quarantine(rc, nodeId, Optional.of(device));
  }

  /** Admin: takes every GPU of a node out of service (cordons it before maintenance), as {@link #quarantineGpu}. */
  private void quarantineNode(RoutingContext rc) {
    quarantine(rc, rc.pathParam("nodeId"), Optional.empty());
  }

  private void quarantine(RoutingContext rc, String nodeId, Optional<Integer> only) {
    admin(rc).compose(v -> {
      JsonObject body = optionalBody(rc);
      checkFields(body, Set.of("reason"));
      Object r = body.getValue("reason", "maintenance");
      if (!(r instanceof String given) || given.isBlank() || given.length() > 500) {
        throw Problem.invalid("invalid-quarantine", "Invalid quarantine", new JsonArray().add(new JsonObject()
            .put("field", "reason").put("code", "invalid").put("message", "reason must be a string of 1 to 500 characters")));
      }
      String reason = "by an operator: " + given.strip();
      // the node's devices as the scheduler knows them: a device it does not know is refused, not stored
      return vertx.eventBus().<JsonObject>request(Addresses.FLEET, new JsonObject())
          .recover(e -> Future.failedFuture(new Problem("unavailable", 503, "Scheduler unavailable", e.getMessage())))
          .compose(m -> {
            List<Integer> devices = new java.util.ArrayList<>();
            for (Object o : m.body().getJsonArray("gpus", new JsonArray())) {
              JsonObject g = (JsonObject) o;
              if (nodeId.equals(g.getString("nodeId")) && only.map(d -> d.equals(g.getInteger("index"))).orElse(true)) {
                devices.add(g.getInteger("index"));
              }
            }
            if (devices.isEmpty()) {
              return Future.failedFuture(Problem.notFound(only.isPresent() ? "no GPU " + nodeId + "/" + only.get() + " in the fleet"
                  : "no node " + nodeId + " in the fleet"));
            }
            return Future.fromCompletionStage(store.writer().submit(c -> {
              Map<Integer, String> before = Quarantines.of(c, nodeId);
              Map<Integer, String> out = new java.util.TreeMap<>();
              for (int d : devices) {
                Quarantines.add(c, nodeId, d, reason, System.currentTimeMillis());
                out.put(d, before.getOrDefault(d, reason)); // a device quarantined already keeps its first reason
              }
              return Map.entry(out, devices.stream().anyMatch(d -> !before.containsKey(d)));
            }), vertx.getOrCreateContext());
          })
          .map(stored -> {
            JsonArray gpus = new JsonArray();
            stored.getKey().forEach((d, why) -> {
              JsonObject told = new JsonObject().put("nodeId", nodeId).put("device", d).put("reason", why);
              vertx.eventBus().send(Addresses.DEVICE_QUARANTINED, told);
              vertx.eventBus().send(Addresses.workerQuarantine(nodeId), told);
              gpus.add(new JsonObject().put("device", d).put("reason", why));
            });
            LOG.warning("GPU(s) " + nodeId + "/" + stored.getKey().keySet() + " quarantined: " + reason);
            return new JsonObject().put("nodeId", nodeId).put("quarantined", gpus).put("changed", stored.getValue());
          });
    }).onSuccess(o -> rc.response().setStatusCode(o.getBoolean("changed") ? 201 : 200)
        .putHeader("content-type", "application/json").end(o.encode())).onFailure(e -> fail(rc, e));
  }

  /** A node's labels (ADR 29), as the store holds them; readable as the fleet is ({@code GET /api/v1/gpus}). */
  private void nodeLabels(RoutingContext rc) {
    String nodeId = rc.pathParam("nodeId");
    Future.fromCompletionStage(store.read(c -> NodeLabels.of(c, nodeId)), vertx.getOrCreateContext())
        .onSuccess(labels -> rc.json(new JsonObject().put("nodeId", nodeId).put("labels", NodeLabels.toJson(labels))))
        .onFailure(e -> fail(rc, e));
  }

  /**
   * Admin: gives a node of the fleet its labels (ADR 29), {@code {"labels": {"tier": "certified"}}}, replacing
   * those it had ({@code {}} takes them all off). Jobs that ask for labels ({@code nodeLabels}) are placed only
   * on nodes carrying every one; jobs running on the node run on. Stored, so they outlive restarts; a node
   * cannot give itself labels. 200 with the labels the node has now and whether they changed.
   */
  private void labelNode(RoutingContext rc) {
    String nodeId = rc.pathParam("nodeId");
    admin(rc).compose(v -> {
      JsonObject body = optionalBody(rc);
      checkFields(body, Set.of("labels"));
      List<JobSpec.FieldError> errors = new java.util.ArrayList<>();
      if (!body.containsKey("labels")) {
        errors.add(new JobSpec.FieldError("labels", "required", "labels is required: an object of names to values, {} for none"));
      }
      Object given = body.getValue("labels");
      Map<String, String> labels = JobSpec.labels(given instanceof JsonObject o ? o.getMap() : given, "labels", errors);
      if (!errors.isEmpty()) {
        JsonArray list = new JsonArray();
        errors.forEach(e -> list.add(new JsonObject().put("field", e.field()).put("code", e.code()).put("message", e.message())));
        throw Problem.invalid("invalid-labels", "Invalid labels", list);
      }
      // a node the scheduler does not know is refused, not stored (a typo would label nothing)
      return vertx.eventBus().<JsonObject>request(Addresses.FLEET, new JsonObject())
          .recover(e -> Future.failedFuture(new Problem("unavailable", 503, "Scheduler unavailable", e.getMessage())))
          .compose(m -> {
            boolean known = m.body().getJsonArray("gpus", new JsonArray()).stream()
                .anyMatch(g -> nodeId.equals(((JsonObject) g).getString("nodeId")));
            if (!known) return Future.failedFuture(Problem.notFound("no node " + nodeId + " in the fleet"));
            return Future.fromCompletionStage(store.writer().submit(c -> NodeLabels.replace(c, nodeId, labels)),
                vertx.getOrCreateContext());
          })
          .map(changed -> {
            JsonObject now = NodeLabels.toJson(labels);
            if (changed) {
              vertx.eventBus().publish(Addresses.NODE_LABELS, new JsonObject().put("nodeId", nodeId).put("labels", now));
              LOG.info("node " + nodeId + " labelled " + labels + " by an operator");
            }
            return new JsonObject().put("nodeId", nodeId).put("labels", now).put("changed", changed);
          });
    }).onSuccess(o -> rc.json(o)).onFailure(e -> fail(rc, e));
  }

  private void gpus(RoutingContext rc) {
    vertx.eventBus().<JsonObject>request(Addresses.FLEET, new JsonObject())
        .onSuccess(m -> rc.json(m.body()))
        .onFailure(e -> fail(rc, new Problem("unavailable", 503, "Scheduler unavailable", e.getMessage())));
  }

  /**
   * Every {@code http.tlsReloadSeconds}: when the certificate or key file changed (a renewal), reads and
   * checks the new pair and serves it to new connections; connections open keep theirs. A pair that cannot
   * be used (unreadable, not PEM, a key of another certificate: a renewal caught halfway) is refused with a
   * warning naming the files, and the certificate served so far stays; it is tried again when the files
   * change again.
   */
  private void reloadCertificate() {
    if (reloadingCertificate) return;
    reloadingCertificate = true;
    java.nio.file.Path cert = config.httpTls().certPath();
    java.nio.file.Path key = config.httpTls().keyPath();
    vertx.executeBlocking(() -> {
      String now = ServingCertificate.digestOf(cert, key);
      if (now.equals(serving.digest()) || now.equals(refusedCertificate)) return null;
      try {
        return ServingCertificate.load(vertx, cert, key);
      } catch (Exception e) {
        refusedCertificate = now;
        throw e;
      }
    }).compose(loaded -> loaded == null ? Future.succeededFuture()
        : server.updateSSLOptions(new io.vertx.core.net.ServerSSLOptions().setKeyCertOptions(loaded.options()), true)
            .map(updated -> {
              serving = loaded;
              metrics.registry().counter("anneal.tls.reloads", "outcome", "ok").increment();
              LOG.info("HTTPS now serves the renewed certificate " + loaded.leaf().getSubjectX500Principal() + " (serial "
                  + loaded.leaf().getSerialNumber().toString(16) + ", valid until " + loaded.leaf().getNotAfter().toInstant() + ")");
              return null;
            }))
        .onComplete(ar -> {
          reloadingCertificate = false;
          if (ar.failed()) {
            metrics.registry().counter("anneal.tls.reloads", "outcome", "refused").increment();
            LOG.warning("HTTPS: the renewed certificate " + cert + " and key " + key + " cannot be used, the previous one"
                + " is served: " + ar.cause().getMessage());
          }
        });
  }

  // ------------------------------------------------------------------ billing views

  private JsonObject oracleJson() {
    java.time.Instant t = java.time.Instant.now();
    var r = oracleState.aggregate(t.getEpochSecond() * 1_000_000_000L + t.getNano());
    JsonObject o = new JsonObject().put("healthy", r.healthy()).put("sources", r.numSources())
        .put("priceAkt", r.twap() == null ? null : r.twap().toString())
        .put("median", r.median() == null ? null : r.median().toString())
        .put("deviationBps", r.deviationBps()).put("failure", r.failure()).put("source", config.oracleSource());
    if (!oracleState.errors().isEmpty()) o.put("errors", new JsonObject(new java.util.HashMap<>(oracleState.errors())));
    return o;
  }

  static JsonObject supplyJson(SupplyView s, OracleSnapshot oracle) {
    JsonObject o = new JsonObject()
        .put("vaultAkt", s.vaultAkt()).put("actSupply", s.actSupply()).put("engineAct", s.engineAct())
        .put("remintCredits", s.remintCredits()).put("escrowedUact", s.escrowedUact())
        .put("totalMinted", new JsonObject().put("uact", s.totalMintedUact()).put("uakt", s.totalMintedUakt()))
        .put("totalBurned", new JsonObject().put("uact", s.totalBurnedUact()).put("uakt", 0))
        .put("status", s.status()).put("previousStatus", s.previousStatus())
        .put("epochHeightDiff", s.epochHeightDiff()).put("pendingMintUakt", s.pendingAkt())
        ;
    try {
      var cr = io.anneal.billing.bme.Bme.collateralRatio(java.math.BigInteger.valueOf(s.vaultAkt()),
          java.math.BigInteger.valueOf(s.pendingAkt()), java.math.BigInteger.valueOf(s.actSupply()), oracle);
      o.put("collateralRatio", cr.ratio().toString()).put("crBps", cr.bps());
    } catch (io.anneal.billing.bme.BmeException e) {
      o.putNull("collateralRatio").putNull("crBps");
    }
    return o;
  }

  private void supply(RoutingContext rc) {
    Future.fromCompletionStage(store.read(c -> new Object[] {SqlLedger.supply(c), Redemptions.pendingCount(c),
            SqlLedger.balance(c, io.anneal.billing.ledger.BootstrapPayouts.FUND, "uact")}), vertx.getOrCreateContext())
        .onSuccess(s -> rc.json(supplyJson((io.anneal.billing.ledger.SupplyView) s[0], oracle.get())
            .put("pendingPayouts", s[1]).put("bootstrapFundUact", s[2]).put("oracle", oracleJson())))
        .onFailure(e -> fail(rc, e));
  }

  /** Class prices now (uact per GPU-hour), their base, and the window that last moved each (bme-spec 16.2). */
  private void prices(RoutingContext rc) {
    JsonObject classes = new JsonObject();
    var latest = prices.latestChanges();
    prices.current().forEach((cls, p) -> {
      JsonObject o = new JsonObject().put("uactPerGpuHour", p).put("baseUactPerGpuHour", prices.base().get(cls));
      var ch = latest.get(cls);
      if (ch != null) {
        o.put("sinceMs", ch.fromMs()).put("lastWindowUtilization", ch.utilization() == null ? null : ch.utilization().toString());
      }
      classes.put(cls, o);
    });
    rc.json(new JsonObject().put("adjust", config.priceAdjust()).put("windowSeconds", config.priceWindowSeconds())
        .put("classes", classes));
  }

  private void receipt(RoutingContext rc) {
    String jobId = rc.pathParam("jobId");
    tenant(rc).compose(t -> receiptJobState(t, jobId))
        .compose(state -> Future.fromCompletionStage(store.read(c -> {
              List<Map<String, Object>> rows = SqlLedger.settlementsOfJob(c, jobId);
              Map<String, List<NodeKey>> keys = new HashMap<>();
              for (Map<String, Object> row : rows) {
                SqlLedger.epochProof(c, (String) row.get("receiptId")).ifPresent(e -> row.put("epoch", e));
                List<Map<String, Object>> payouts = Redemptions.payoutsOf(c, (String) row.get("receiptId"));
                if (!payouts.isEmpty()) {
                  row.put("payout", payouts.get(0));
                  row.put("payouts", payouts);
                }
                String node = (String) row.get("nodeId");
                if (!keys.containsKey(node)) keys.put(node, SqlLedger.nodeKeys(c, node));
                // the key of the node's that signed this run's batch (a rotated node has had several, ADR 18)
                signingKey(keys.get(node), (String) row.get("batchRoot"), (String) row.get("signature")).ifPresent(k -> {
                  row.put("nodePublicKey", k.publicKey());
                  row.put("nodeKeyState", k.state());
                });
              }
              return rows;
            }), vertx.getOrCreateContext())
            .map(rows -> {
              JsonObject out = new JsonObject().put("jobId", jobId).put("state", state);
              if (rows.isEmpty()) {
                return out.put("settled", false).put("receipt", (Object) null).put("runs", new JsonArray());
              }
              // every run the job was billed for (a preempted job has several), oldest first; the
              // last one also at the top level, as before runs were listed
              JsonArray runs = new JsonArray();
              rows.forEach(row -> runs.add(runJson(row)));
              JsonObject last = runs.getJsonObject(runs.size() - 1);
              out.put("settled", true).put("receipt", last.getJsonObject("receipt")).put("settlement", last.getJsonObject("settlement"));
              if (last.containsKey("epoch")) out.put("epoch", last.getJsonObject("epoch"));
              return out.put("runs", runs);
            }))
        .onSuccess(rc::json)
        .onFailure(e -> fail(rc, e));
  }

  /**
   * Of a node's keys, the one that signed a batch root; none when none did (the receipt's checks then
   * fail where its reader runs them). Nodes have a key or a few.
   */
  static Optional<NodeKey> signingKey(List<NodeKey> keys, String rootHex, String signatureB64) {
    return keys.stream().filter(k -> ReceiptVerifier.rootSigned(rootHex, signatureB64, k.publicKey())).findFirst();
  }

  /**
   * One settled run: its signed receipt with the key of its node that signed it (and that key's state
   * now: current, retired or revoked), its settlement, its epoch and proof.
   */
  private static JsonObject runJson(Map<String, Object> row) {
    JsonObject receipt = new JsonObject().put("receiptId", row.get("receiptId")).put("body", row.get("receiptBody"))
        .put("nodeId", row.get("nodeId")).put("batchRoot", row.get("batchRoot")).put("proof", row.get("proof"))
        .put("signature", row.get("signature")).put("signatureAlgorithm", "Ed25519")
        .put("nodePublicKey", row.get("nodePublicKey")).put("nodeKeyState", row.get("nodeKeyState"));
    JsonObject run = new JsonObject().put("receipt", receipt).put("settlement", settlementJson(row));
    @SuppressWarnings("unchecked")
    Map<String, Object> epoch = (Map<String, Object>) row.get("epoch");
    if (epoch != null) run.put("epoch", new JsonObject(epoch));
    @SuppressWarnings("unchecked")
    Map<String, Object> payout = (Map<String, Object>) row.get("payout");
    // the provider payout that burns the ACT this run was charged, for AKT (absent until one is asked),
    // and with it every payout that burns part of it, each with its part (by amount, ADR 8 addendum 2)
    if (payout != null) run.put("payout", new JsonObject(payout));
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> payouts = (List<Map<String, Object>>) row.get("payouts");
    if (payouts != null) {
      JsonArray all = new JsonArray();
      payouts.forEach(p -> all.add(new JsonObject(p)));
      run.put("payouts", all);
    }
    return run;
  }

  /**
   * A settlement row for the receipts API; {@code billedDeviceNanos} only when less GPU time was billed
   * than the receipt claims (more than the job's GPUs could have run since it was placed).
   */
  private static JsonObject settlementJson(Map<String, Object> row) {
    JsonObject s = new JsonObject().put("txId", row.get("txId")).put("chargeUact", row.get("chargeUact"))
        .put("refundUact", row.get("refundUact")).put("paidUakt", row.get("paidUakt")).put("settledAt", row.get("settledAt"));
    if (row.containsKey("billedDeviceNanos")) s.put("billedDeviceNanos", row.get("billedDeviceNanos"));
    return s;
  }

  private void me(RoutingContext rc) {
    tenant(rc).compose(t -> balances(t.id())
        .map(b -> new JsonObject().put("id", t.id()).put("name", t.name()).put("balance", Statements.amounts(b))
            .put("weight", t.weight()).put("gpuQuota", t.gpuQuota()).put("maxQueuedJobs", queueLimitOf(t))
            .put("nodeLabels", NodeLabels.toJson(t.nodeLabels()))))
        .onSuccess(rc::json)
        .onFailure(e -> fail(rc, e));
  }

  /** A tenant's ACT and AKT-direct balances, available and in escrow. */
  private Future<AccountStatement.Amounts> balances(String tenantId) {
    return Future.fromCompletionStage(store.read(c -> AccountStatement.balancesOf(c, tenantId)), vertx.getOrCreateContext());
  }

  /**
   * A tenant as an operator sees it: its id, name, policy, when it was made, when its key was last used and,
   * during a rotation's grace, until when the previous key works and when it was last used.
   */
  private JsonObject tenantView(TenantStore.Listed l) {
    Tenant t = l.tenant();
    JsonObject o = new TenantPolicy(t.weight(), t.gpuQuota(), t.maxQueuedJobs(), t.nodeLabels())
        .toJson(new JsonObject().put("id", t.id()).put("name", t.name())).put("createdAtMs", l.createdAtMs())
        .put("keyLastUsedAtMs", l.keyLastUsedAtMs());
    if (l.previousKeyUntilMs() != null) {
      o.put("previousKeyUntilMs", l.previousKeyUntilMs()).put("previousKeyLastUsedAtMs", l.previousKeyLastUsedAtMs());
    }
    return o;
  }

  /** Admin: every tenant, a page at a time in the order they were made ({@code limit} 1..1000, 200; {@code after}). */
  private void listTenants(RoutingContext rc) {
    Integer limit = countParam(rc, "limit", 200, 1000);
    if (limit == null) return;
    String after = rc.queryParams().get("after");
    admin(rc).compose(v -> Future.fromCompletionStage(tenants.list(after, limit), vertx.getOrCreateContext()))
        .onSuccess(page -> {
          JsonArray a = new JsonArray();
          page.tenants().forEach(l -> a.add(tenantView(l)));
          rc.json(new JsonObject().put("tenants", a).put("next", page.next()));
        }).onFailure(e -> fail(rc, e));
  }

  /** A tenant with its policy (admin, or the tenant itself). */
  private void getTenant(RoutingContext rc) {
    String tenantId = rc.pathParam("id");
    adminOrTenant(rc, tenantId, "a tenant may read only itself")
        .compose(v -> Future.fromCompletionStage(tenants.listed(tenantId), vertx.getOrCreateContext()))
        .onSuccess(l -> {
          if (l.isEmpty()) {
            fail(rc, Problem.notFound("no tenant " + tenantId));
          } else {
            rc.json(tenantView(l.get()));
          }
        }).onFailure(e -> fail(rc, e));
  }

  private void createTenant(RoutingContext rc) {
    admin(rc).compose(v -> {
      JsonObject body = parseBody(rc.body().buffer());
      checkFields(body, Set.of("name", "apiKey", "weight", "gpuQuota", "maxQueuedJobs", "nodeLabels"));
      TenantPolicy policy = TenantPolicy.parse(body, new TenantPolicy(1.0, null, null, Map.of()));
      String name = body.getValue("name") instanceof String s ? s.trim() : null;
      if (name == null || !name.matches("[A-Za-z0-9_.@-]{1,100}")) {
        throw Problem.invalid("invalid-tenant", "Invalid tenant", new JsonArray().add(new JsonObject().put("field", "name")
            .put("code", "invalid").put("message", "name must be 1-100 characters of letters, digits, _ . @ -")));
      }
      String apiKey = apiKeyOf(body, "invalid-tenant", "Invalid tenant", "ak_");
      return Future.fromCompletionStage(tenants.create(name, apiKey), vertx.getOrCreateContext()).compose(t -> {
        if (t.isEmpty()) throw new Problem("conflict", 409, "Tenant exists", "a tenant named '" + name + "' (or that key) exists");
        JsonObject out = policy.toJson(new JsonObject().put("id", t.get().id()).put("name", name).put("apiKey", apiKey));
        if (policy.weight() == 1.0 && policy.gpuQuota() == null && policy.maxQueuedJobs() == null && policy.nodeLabels().isEmpty()) {
          return Future.succeededFuture(out);
        }
        return applyPolicy(t.get().id(), policy).map(ok -> out);
      });
    }).onSuccess(o -> rc.response().setStatusCode(201).putHeader("content-type", "application/json").end(o.encode()))
        .onFailure(e -> fail(rc, e));
  }

  /**
   * Admin: change a tenant's fair-share weight, GPU quota and/or queue bound ({@code "gpuQuota": null} removes
   * the quota, {@code "maxQueuedJobs": null} gives it the service's bound again).
   */
  private void patchTenant(RoutingContext rc) {
    String tenantId = rc.pathParam("id");
    admin(rc).compose(v -> {
      JsonObject body = parseBody(rc.body().buffer());
      checkFields(body, Set.of("weight", "gpuQuota", "maxQueuedJobs", "nodeLabels"));
      return Future.fromCompletionStage(tenants.byId(tenantId), vertx.getOrCreateContext()).compose(t -> {
        if (t.isEmpty()) throw Problem.notFound("no tenant " + tenantId);
        TenantPolicy p = TenantPolicy.parse(body, new TenantPolicy(t.get().weight(), t.get().gpuQuota(), t.get().maxQueuedJobs(),
            t.get().nodeLabels()));
        return applyPolicy(tenantId, p).map(ok -> p.toJson(new JsonObject().put("id", tenantId).put("name", t.get().name())));
      });
    }).onSuccess(rc::json).onFailure(e -> fail(rc, e));
  }

  /** The longest a read-only key may be made to last ({@code expiresInDays}): ten years. */
  static final long MAX_READ_KEY_DAYS = 3650;

  /**
   * A read-only key for a tenant (ADR 30; admin, or the tenant with its API key): it reads what the tenant's
   * key reads — jobs, receipts, balance, statement, webhooks and their deliveries, job events over the
   * WebSocket — and is refused (403 read-only-key) for anything that would change something. Body:
   * {@code name} (1..100 characters), optional {@code expiresInDays} (1..3650) and {@code apiKey} (given, at
   * least 16 characters; else made). 201 with the key, shown only here.
   */
  private void addReadKey(RoutingContext rc) {
    String tenantId = rc.pathParam("id");
    adminOrTenant(rc, tenantId, "a tenant may make read-only keys only for itself").compose(v -> {
      JsonObject body = optionalBody(rc);
      checkFields(body, Set.of("name", "expiresInDays", "apiKey"));
      JsonArray errors = new JsonArray();
      Object n = body.getValue("name");
      if (!(n instanceof String name) || name.isBlank() || name.length() > 100) {
        errors.add(new JsonObject().put("field", "name").put("code", "invalid")
            .put("message", "name must be 1 to 100 characters, e.g. \"grafana\""));
      }
      Object d = body.getValue("expiresInDays");
      if (d != null && (!(d instanceof Integer || d instanceof Long) || ((Number) d).longValue() < 1
          || ((Number) d).longValue() > MAX_READ_KEY_DAYS)) {
        errors.add(new JsonObject().put("field", "expiresInDays").put("code", "invalid")
            .put("message", "expiresInDays must be a whole number of days from 1 to " + MAX_READ_KEY_DAYS + ", or absent for none"));
      }
      if (!errors.isEmpty()) throw Problem.invalid("invalid-read-key", "Invalid read-only key", errors);
      String apiKey = apiKeyOf(body, "invalid-read-key", "Invalid read-only key", "rk_");
      Long expiresAt = d == null ? null : System.currentTimeMillis() + ((Number) d).longValue() * 86_400_000L;
      String name = ((String) n).strip();
      return Future.fromCompletionStage(tenants.addReadKey(tenantId, apiKey, name, expiresAt), vertx.getOrCreateContext())
          .recover(e -> Future.failedFuture(e instanceof IllegalStateException || e.getCause() instanceof IllegalStateException
              ? new Problem("conflict", 409, "Key in use", "that key authenticates someone already") : e))
          .compose(k -> k.isEmpty() ? Future.failedFuture(Problem.notFound("no tenant " + tenantId))
              : Future.succeededFuture(readKeyJson(k.get()).put("apiKey", apiKey)));
    }).onSuccess(o -> rc.response().setStatusCode(201).putHeader("content-type", "application/json").end(o.encode()))
        .onFailure(e -> fail(rc, e));
  }

  private static JsonObject readKeyJson(TenantStore.ReadKey k) {
    long now = System.currentTimeMillis();
    String state = k.revokedAtMs() != null ? "revoked" : k.expiresAtMs() != null && k.expiresAtMs() <= now ? "expired" : "active";
    return new JsonObject().put("fingerprint", k.fingerprint()).put("name", k.name()).put("state", state)
        .put("createdAtMs", k.createdAtMs()).put("expiresAtMs", k.expiresAtMs()).put("revokedAtMs", k.revokedAtMs())
        .put("lastUsedAtMs", k.lastUsedAtMs());
  }

  /** A tenant's read-only keys, oldest first, with their state (active, expired, revoked); never the keys themselves. */
  private void readKeys(RoutingContext rc) {
    String tenantId = rc.pathParam("id");
    adminOrTenant(rc, tenantId, "a tenant may list only its own keys")
        .compose(v -> Future.fromCompletionStage(tenants.readKeys(tenantId), vertx.getOrCreateContext()))
        .onSuccess(keys -> {
          JsonArray list = new JsonArray();
          keys.forEach(k -> list.add(readKeyJson(k)));
          rc.json(new JsonObject().put("tenantId", tenantId).put("readKeys", list));
        }).onFailure(e -> fail(rc, e));
  }

  /**
   * Revokes a tenant's read-only key by its fingerprint (at least 8 of its hex digits): it is refused at once
   * on every instance and its WebSocket sessions are closed. 204; revoking it again answers the same.
   */
  private void revokeReadKey(RoutingContext rc) {
    String tenantId = rc.pathParam("id");
    String fingerprint = rc.pathParam("fingerprint");
    adminOrTenant(rc, tenantId, "a tenant may revoke only its own keys")
        .compose(v -> Future.fromCompletionStage(tenants.revokeReadKey(tenantId, fingerprint), vertx.getOrCreateContext())
            .recover(e -> Future.failedFuture(e instanceof IllegalStateException || e.getCause() instanceof IllegalStateException
                ? new Problem("conflict", 409, "Ambiguous fingerprint", "more than one read-only key of this tenant starts with "
                    + fingerprint + ": give more of it") : e)))
        .onSuccess(hash -> {
          if (hash.isEmpty()) {
            fail(rc, Problem.notFound("no read-only key " + fingerprint + " of tenant " + tenantId));
            return;
          }
          readKeyEnded(hash.get()); // here before the answer; the other instances as the message reaches them
          vertx.eventBus().publish(Addresses.TENANT_READ_KEY_REVOKED, new JsonObject().put("tenantId", tenantId)
              .put("keyHash", hash.get()));
          LOG.info("tenant " + tenantId + ": read-only key " + fingerprint + " revoked");
          rc.response().setStatusCode(204).end();
        }).onFailure(e -> fail(rc, e));
  }

  /** A read-only key was revoked: forgotten here, and the sessions opened with it closed. */
  private void readKeyEnded(String hash) {
    tenantChanges.incrementAndGet();
    tenantByKey.entrySet().removeIf(e -> e.getValue().readOnly() && TenantStore.hashKey(e.getKey()).equals(hash));
    sessionsByTenant.values().forEach(set -> List.copyOf(set).forEach(ws -> ws.readKeyEnded(hash)));
  }

  /** The longest a replaced tenant key may go on working ({@code graceSeconds}): a week. */
  static final long MAX_KEY_GRACE_SECONDS = 7 * 86_400;

  /**
   * A new API key for a tenant (admin, or the tenant with its current key): the old one stops working
   * on every instance at once and the WebSocket sessions opened with it are closed — or, with
   * {@code graceSeconds}, once that time has passed, so that running clients can move to the new key
   * without an outage. The key is given ({@code apiKey}, at least 16 characters) or generated; a given key
   * makes a retry safe: sent again (with the new key, or the old one in its grace) it answers 200 and
   * changes nothing.
   */
  private void rotateTenantKey(RoutingContext rc) {
    String tenantId = rc.pathParam("id");
    adminOrTenant(rc, tenantId, "a tenant may rotate only its own key").compose(v -> {
      JsonObject body = optionalBody(rc);
      checkFields(body, Set.of("apiKey", "graceSeconds"));
      String apiKey = apiKeyOf(body, "invalid-tenant", "Invalid tenant", "ak_");
      Object g = body.getValue("graceSeconds", 0);
      if (!(g instanceof Integer || g instanceof Long) || ((Number) g).longValue() < 0
          || ((Number) g).longValue() > MAX_KEY_GRACE_SECONDS) {
        throw Problem.invalid("invalid-tenant", "Invalid tenant", new JsonArray().add(new JsonObject().put("field", "graceSeconds")
            .put("code", "invalid").put("message", "graceSeconds must be a whole number of seconds from 0 to " + MAX_KEY_GRACE_SECONDS)));
      }
      long graceMs = ((Number) g).longValue() * 1000;
      return Future.fromCompletionStage(tenants.rotateKey(tenantId, apiKey, graceMs), vertx.getOrCreateContext()).compose(r -> {
        TenantStore.KeyChange change = r.change();
        switch (change) {
          case NO_TENANT:
            return Future.failedFuture(Problem.notFound("no tenant " + tenantId));
          case KEY_TAKEN:
            return Future.failedFuture(new Problem("conflict", 409, "Key in use", "that key belongs to another tenant or is an admin key"));
          case RACED:
            return Future.failedFuture(new Problem("conflict", 409, "Key changed meanwhile",
                "another rotation of this tenant's key committed first; nothing changed"));
          case ROTATED:
            LOG.info("tenant " + tenantId + " has a new API key; the old one " + (r.previousUntilMs() > 0
                ? "authenticates until " + java.time.Instant.ofEpochMilli(r.previousUntilMs()) : "no longer authenticates"));
            JsonObject rotation = new JsonObject().put("tenantId", tenantId).put("keyHash", TenantStore.hashKey(apiKey));
            if (r.previousUntilMs() > 0) {
              rotation.put("previousKeyHash", r.previousHash()).put("previousKeyValidUntil", r.previousUntilMs());
            }
            keyRotated(rotation); // here before the answer; the other instances as the message reaches them
            vertx.eventBus().publish(Addresses.TENANT_KEY, rotation);
            JsonObject out = new JsonObject().put("id", tenantId).put("apiKey", apiKey).put("rotated", true);
            if (r.previousUntilMs() > 0) out.put("previousKeyValidUntil", r.previousUntilMs());
            return Future.succeededFuture(out);
          default:
            return Future.succeededFuture(new JsonObject().put("id", tenantId).put("apiKey", apiKey).put("rotated", false));
        }
      });
    }).onSuccess(o -> rc.response().setStatusCode(o.getBoolean("rotated") ? 201 : 200)
        .putHeader("content-type", "application/json").end(o.encode())).onFailure(e -> fail(rc, e));
  }

  /**
   * The key a request gives ({@code apiKey}: 16 to 200 characters, no surrounding spaces, which a bearer
   * header would drop), or a new one generated with {@code prefix}; a key that is not valid is refused as
   * {@code problemType}.
   */
  private static String apiKeyOf(JsonObject body, String problemType, String title, String prefix) {
    if (!body.containsKey("apiKey")) return prefix + Ids.next("").substring(12) + Ids.next("").substring(12);
    if (body.getValue("apiKey") instanceof String s && s.length() >= 16 && s.length() <= 200 && s.strip().equals(s)) return s;
    throw Problem.invalid(problemType, title, new JsonArray().add(new JsonObject().put("field", "apiKey").put("code", "invalid")
        .put("message", "apiKey must be a string of 16 to 200 characters, without surrounding spaces")));
  }

  /** Admin: every admin key by fingerprint (the keys themselves are not stored), the caller's marked {@code current}. */
  private void adminKeys(RoutingContext rc) {
    admin(rc).compose(v -> Future.fromCompletionStage(tenants.adminKeys(), vertx.getOrCreateContext())).map(keys -> {
      String mine = TenantStore.fingerprint(bearer(rc.request().getHeader("Authorization")).orElseThrow());
      JsonArray out = new JsonArray();
      for (TenantStore.AdminKey k : keys) {
        out.add(new JsonObject().put("fingerprint", k.fingerprint()).put("createdAt", k.createdAtMs())
            .put("revokedAt", k.revokedAtMs()).put("lastUsedAt", k.lastUsedAtMs()).put("current", k.fingerprint().equals(mine)));
      }
      return new JsonObject().put("keys", out);
    }).onSuccess(rc::json).onFailure(e -> fail(rc, e));
  }

  /**
   * Admin: another admin key, given ({@code apiKey}, 16 characters or more; the same call again answers
   * 200) or generated. With it the admin can then revoke the one it replaces.
   */
  private void addAdminKey(RoutingContext rc) {
    admin(rc).compose(v -> {
      JsonObject body = optionalBody(rc);
      checkFields(body, Set.of("apiKey"));
      String key = apiKeyOf(body, "invalid-key", "Invalid key", "adm_");
      return Future.fromCompletionStage(tenants.addAdminKey(key), vertx.getOrCreateContext()).compose(added -> {
        JsonObject out = new JsonObject().put("fingerprint", TenantStore.fingerprint(key)).put("apiKey", key);
        switch (added) {
          case ADDED:
            LOG.info("admin key " + TenantStore.fingerprint(key) + " added");
            return Future.succeededFuture(out.put("added", true));
          case EXISTS:
            return Future.succeededFuture(out.put("added", false));
          case REVOKED:
            return Future.failedFuture(new Problem("conflict", 409, "Key revoked", "that admin key was revoked; revoked keys stay revoked"));
          default:
            return Future.failedFuture(new Problem("conflict", 409, "Key in use", "that key is a tenant's API key"));
        }
      });
    }).onSuccess(o -> rc.response().setStatusCode(o.getBoolean("added") ? 201 : 200)
        .putHeader("content-type", "application/json").end(o.encode())).onFailure(e -> fail(rc, e));
  }

  /**
   * Admin: revokes an admin key by its fingerprint ({@code sha256:} optional, 16 hex digits or more of
   * its SHA-256): it no longer authenticates, on every instance (admin keys are read from the store on
   * each request). The last key that authenticates cannot be revoked (409).
   */
  private void revokeAdminKey(RoutingContext rc) {
    String given = rc.pathParam("fingerprint");
    String hex = (given.startsWith("sha256:") ? given.substring(7) : given).toLowerCase(java.util.Locale.ROOT);
    admin(rc).compose(v -> {
      if (!hex.matches("[0-9a-f]{16,64}")) {
        throw Problem.invalid("invalid-key", "Invalid fingerprint", new JsonArray().add(new JsonObject().put("field", "fingerprint")
            .put("code", "invalid").put("message", "a fingerprint is sha256: and 16 to 64 hexadecimal digits of the key's SHA-256")));
      }
      return Future.fromCompletionStage(tenants.revokeAdminKey(hex, System.currentTimeMillis()), vertx.getOrCreateContext());
    }).compose(r -> {
      switch (r) {
        case REVOKED:
          LOG.warning("admin key sha256:" + hex + " revoked");
          return Future.succeededFuture(new JsonObject().put("fingerprint", "sha256:" + hex).put("revoked", true));
        case ALREADY:
          return Future.succeededFuture(new JsonObject().put("fingerprint", "sha256:" + hex).put("revoked", false));
        case NONE:
          return Future.failedFuture(Problem.notFound("no admin key sha256:" + hex));
        case AMBIGUOUS:
          return Future.failedFuture(new Problem("conflict", 409, "Ambiguous fingerprint",
              "more than one admin key starts with that fingerprint: give more of its SHA-256"));
        default:
          return Future.failedFuture(new Problem("last-admin-key", 409, "Last admin key",
              "it is the only admin key that authenticates: add another (POST /api/v1/admin-keys) before revoking it"));
      }
    }).onSuccess(rc::json).onFailure(e -> fail(rc, e));
  }

  /** Stores a policy, then tells the scheduler (which applies it from its next placement pass). */
  private Future<Boolean> applyPolicy(String tenantId, TenantPolicy p) {
    return Future.fromCompletionStage(tenants.setPolicy(tenantId, p.weight(), p.gpuQuota(), p.maxQueuedJobs(), p.nodeLabels()),
            vertx.getOrCreateContext())
        .onSuccess(ok -> vertx.eventBus().publish(Addresses.TENANT_POLICY, p.toJson(new JsonObject().put("tenantId", tenantId))));
  }

  /** A tenant's scheduling policy as the API accepts it. */
  record TenantPolicy(double weight, Integer gpuQuota, Integer maxQueuedJobs, Map<String, String> nodeLabels) {
    /** The policy's fields put into {@code o}. */
    JsonObject toJson(JsonObject o) {
      return o.put("weight", weight).put("gpuQuota", gpuQuota).put("maxQueuedJobs", maxQueuedJobs)
          .put("nodeLabels", NodeLabels.toJson(nodeLabels));
    }

    static TenantPolicy parse(JsonObject body, TenantPolicy current) {
      double weight = current.weight();
      Integer quota = current.gpuQuota();
      Integer maxQueued = current.maxQueuedJobs();
      Map<String, String> labels = current.nodeLabels();
      JsonArray errors = new JsonArray();
      if (body.containsKey("nodeLabels")) {
        // null or {}: none; the node labels every job of the tenant asks for (ADR 29)
        Object given = body.getValue("nodeLabels");
        List<JobSpec.FieldError> wrong = new java.util.ArrayList<>();
        labels = JobSpec.labels(given instanceof JsonObject o ? o.getMap() : given, "nodeLabels", wrong);
        wrong.forEach(e -> errors.add(new JsonObject().put("field", e.field()).put("code", e.code()).put("message", e.message())));
      }
      if (body.containsKey("weight")) {
        Object w = body.getValue("weight");
        if (w instanceof Number n && n.doubleValue() > 0 && n.doubleValue() <= 1000) {
          weight = n.doubleValue();
        } else {
          errors.add(new JsonObject().put("field", "weight").put("code", "invalid")
              .put("message", "weight must be a number in (0, 1000]"));
        }
      }
      if (body.containsKey("gpuQuota")) {
        Object q = body.getValue("gpuQuota");
        if (q == null) {
          quota = null;
        } else if ((q instanceof Integer || q instanceof Long) && ((Number) q).longValue() >= 0
            && ((Number) q).longValue() <= 1_000_000) {
          quota = ((Number) q).intValue();
        } else {
          errors.add(new JsonObject().put("field", "gpuQuota").put("code", "invalid")
              .put("message", "gpuQuota must be an integer from 0 to 1000000, or null for none"));
        }
      }
      if (body.containsKey("maxQueuedJobs")) {
        Object q = body.getValue("maxQueuedJobs");
        if (q == null) {
          maxQueued = null;
        } else if ((q instanceof Integer || q instanceof Long) && ((Number) q).longValue() >= 1
            && ((Number) q).longValue() <= 100_000_000) {
          maxQueued = ((Number) q).intValue();
        } else {
          errors.add(new JsonObject().put("field", "maxQueuedJobs").put("code", "invalid")
              .put("message", "maxQueuedJobs must be an integer from 1 to 100000000, or null for the service's bound"));
        }
      }
      if (!errors.isEmpty()) throw Problem.invalid("invalid-tenant", "Invalid tenant", errors);
      return new TenantPolicy(weight, quota, maxQueued, labels);
    }
  }

  /**
   * Admin: records a tenant's AKT deposit and queues its conversion; the ACT arrives at the next mint
   * epoch (bme-spec 14). The answer says so (202, state PENDING, the ACT it would mint at today's
   * price); the same reference again answers with the deposit's current state.
   */
  private void deposit(RoutingContext rc) {
    String tenantId = rc.pathParam("id");
    admin(rc).compose(v -> {
      JsonObject body = parseBody(rc.body().buffer());
      checkFields(body, Set.of("akt", "usd", "reference", "direct"));
      Object directField = body.getValue("direct");
      if (directField != null && !(directField instanceof Boolean)) {
        throw new Problem("invalid-deposit", 422, "Invalid deposit", "direct must be true or false");
      }
      boolean direct = Boolean.TRUE.equals(directField);
      long uakt = depositUakt(body, direct);
      if (direct && !config.aktDirect()) {
        throw new Problem("bme-refused", 409, "Deposit not taken", "AKT-direct deposits are turned off (bme.aktDirect)");
      }
      String ref = body.getValue("reference") instanceof String s && !s.isBlank() ? s
          : Optional.ofNullable(rc.request().getHeader("Idempotency-Key")).orElse(Ids.next("d_"));
      return Future.fromCompletionStage(tenants.byId(tenantId), vertx.getOrCreateContext()).compose(t -> {
        if (t.isEmpty()) throw Problem.notFound("no tenant " + tenantId);
        if (direct) {
          return Future.fromCompletionStage(store.writer().submit(c -> {
            Mints.Requested r = Mints.depositDirect(c, tenantId, ref, uakt, oracle.get());
            Map<String, Object> state = new java.util.LinkedHashMap<>();
            state.put("reference", ref);
            state.put("depositedUakt", r.uakt());
            state.put("state", "DIRECT");
            state.put("balanceUakt", SqlLedger.balance(c, Accounts.tenant(tenantId), "uakt"));
            return Map.entry(r, r.refusal() == null ? Optional.of(state) : Optional.<Map<String, Object>>empty());
          }), vertx.getOrCreateContext());
        }
        return Future.fromCompletionStage(store.writer().submit(c -> {
          Mints.Requested r = Mints.request(c, tenantId, ref, uakt, oracle.get(), bmeParams, System.currentTimeMillis());
          return Map.entry(r, r.refusal() == null ? Mints.status(c, tenantId, ref) : Optional.<Map<String, Object>>empty());
        }), vertx.getOrCreateContext());
      });
    }).onSuccess(e -> {
      Mints.Requested r = e.getKey();
      if (r.refusal() != null) {
        int status = refusalStatus(r.refusal());
        String title = r.refusal() == LedgerRefusal.AKT_DIRECT_UNAVAILABLE ? "Deposit not taken" : "Deposit not converted";
        fail(rc, new Problem("bme-refused", status, title, r.refusal() + ": " + r.detail()));
        return;
      }
      if ("DIRECT".equals(e.getValue().map(m -> m.get("state")).orElse(null))) {
        JsonObject out = new JsonObject(new java.util.LinkedHashMap<>(e.getValue().get())).put("duplicate", r.duplicate());
        rc.response().setStatusCode(r.duplicate() ? 200 : 201).putHeader("content-type", "application/json").end(out.encode());
        return;
      }
      // a deposit converted at once by an earlier version has no queued request: it is done
      respondQueued(rc, r, e.getValue().isPresent() ? new JsonObject(new java.util.LinkedHashMap<>(e.getValue().get()))
          : new JsonObject().put("depositedUakt", r.uakt()).put("state", "EXECUTED"));
    }).onFailure(e -> fail(rc, e));
  }

  /**
   * The AKT of a deposit: {@code akt}, or with the exact-USD option (bme-spec 16.4) {@code usd}, which
   * asks for {@code ceil(usd / P)} uakt at the current oracle price. Exactly one of the two.
   */
  private long depositUakt(JsonObject body, boolean direct) {
    boolean hasUsd = body.containsKey("usd");
    if (hasUsd == body.containsKey("akt")) {
      throw new Problem("invalid-deposit", 422, "Invalid deposit", "give either akt or usd (exact-USD top-up), not "
          + (hasUsd ? "both" : "neither"));
    }
    if (!hasUsd) return parseAkt(body.getValue("akt"));
    if (!bmeParams.options().exactUsd()) {
      throw new Problem("invalid-deposit", 422, "Invalid deposit",
          "exact-USD top-ups are turned off (bme.exactUsd); give akt");
    }
    if (direct) {
      throw new Problem("invalid-deposit", 422, "Invalid deposit", "an AKT-direct deposit is stated in akt, not usd");
    }
    long microUsd = parseAmount(body.getValue("usd"), "usd", "invalid-deposit", "Invalid deposit", "\"25.50\"");
    try {
      return Bme.uaktForUsd(BigDecimal.valueOf(microUsd, 6), oracle.get());
    } catch (BmeException e) {
      throw new Problem("bme-refused", 503, "Deposit not converted", e.code() + ": " + e.getMessage()
          + " (an exact-USD top-up needs the AKT price)");
    }
  }

  /** The answer to a conversion queued for the next mint epoch (a deposit or a grant): 202, or 200 when repeated. */
  private static void respondQueued(RoutingContext rc, Mints.Requested r, JsonObject view) {
    view.put("duplicate", r.duplicate()).put("executesAt", "next mint epoch");
    if (r.estimateUact() != null) view.put("estimatedCreditUact", Long.parseLong(r.estimateUact()));
    rc.response().setStatusCode(r.duplicate() ? 200 : 202).putHeader("content-type", "application/json").end(view.encode());
  }

  /** HTTP status of a BME refusal: the breaker or oracle (503, retry later), a conflict with state (409), else 422. */
  private static int refusalStatus(LedgerRefusal r) {
    return switch (r) {
      case CIRCUIT_BREAKER, ORACLE_UNHEALTHY -> 503;
      case QUEUE_FULL -> 429;
      case INSUFFICIENT_FUNDS, AKT_DIRECT_UNAVAILABLE -> 409;
      default -> 422;
    };
  }

  /**
   * Closed accounting epochs, newest first ({@code ?limit=}, default 24, at most 1,000), or with
   * {@code ?view=week} their sums per ISO week ({@code &weeks=}, default 4, at most 520) with the
   * week's burned-vs-minted ratio (bme-spec 16.1). Public, like the supply.
   */
  private void epochs(RoutingContext rc) {
    String view = rc.queryParams().get("view");
    if (view != null && !view.equals("week") && !view.equals("epoch")) {
      fail(rc, new Problem("invalid-query", 422, "Invalid query", "view must be epoch or week"));
      return;
    }
    boolean weekly = "week".equals(view);
    Integer n = weekly ? countParam(rc, "weeks", 4, 520) : countParam(rc, "limit", 24, 1000);
    if (n == null) return;
    Future.fromCompletionStage(store.read(c -> weekly ? SqlLedger.epochWeeks(c, n, System.currentTimeMillis())
        : SqlLedger.closedEpochs(c, n)), vertx.getOrCreateContext())
        .onSuccess(rows -> {
          JsonArray a = new JsonArray();
          rows.forEach(r -> a.add(JsonObject.mapFrom(r)));
          rc.json(new JsonObject().put("view", weekly ? "week" : "epoch").put(weekly ? "weeks" : "epochs", a));
        })
        .onFailure(e -> fail(rc, e));
  }

  /**
   * A BME scenario simulated (bme-spec "Beyond the chain", docs/bme.md): its summary and its hours.
   * A run costs seconds of CPU, so it takes a key (a tenant's or the admin's), one runs at a time, and
   * the last few are kept.
   */
  private void scenario(RoutingContext rc) {
    anyKey(rc).compose(v -> {
      try {
        return scenarios.run(ScenarioRuns.config(rc.pathParam("id"), rc.queryParams()));
      } catch (Problem p) {
        return Future.<JsonObject>failedFuture(p);
      }
    }).onSuccess(rc::json).onFailure(e -> fail(rc, e));
  }

  /** Any key the service knows: a tenant's or the admin's. */
  private Future<Void> anyKey(RoutingContext rc) {
    Optional<String> key = bearer(rc.request().getHeader("Authorization"));
    if (key.isEmpty()) return Future.failedFuture(Problem.unauthorized());
    return Future.fromCompletionStage(tenants.isAdminKey(key.get()), vertx.getOrCreateContext())
        .compose(admin -> admin ? Future.<Void>succeededFuture() : tenantOf(rc, key.get()).mapEmpty());
  }

  /** The query parameter {@code name} in 1..{@code max} ({@code dflt} when absent); null once answered 422. */
  private static Integer countParam(RoutingContext rc, String name, int dflt, int max) {
    String raw = rc.queryParams().get(name);
    try {
      int n = raw == null ? dflt : Integer.parseInt(raw);
      if (n >= 1 && n <= max) return n;
    } catch (NumberFormatException e) {
      // answered below, as an out-of-range value is
    }
    fail(rc, new Problem("invalid-query", 422, "Invalid query", name + " must be 1.." + max));
    return null;
  }

  /** Admin: receipts refused for who sent them (bad signature, unknown node, a job not placed on it), newest first. */
  private void refusedReceipts(RoutingContext rc) {
    Integer n = countParam(rc, "limit", 100, 1000);
    if (n == null) return;
    admin(rc).compose(v -> Future.fromCompletionStage(store.read(c -> SqlLedger.refusedReceipts(c, n)), vertx.getOrCreateContext()))
        .onSuccess(rows -> {
          JsonArray a = new JsonArray();
          rows.forEach(r -> a.add(new JsonObject().put("receiptId", r.receiptId()).put("nodeId", r.nodeId())
              .put("reason", r.reason()).put("at", java.time.Instant.ofEpochMilli(r.atMs()).toString())
              .put("settledSince", r.settled())));
          rc.json(new JsonObject().put("refused", a));
        })
        .onFailure(e -> fail(rc, e));
  }

  /**
   * Admin: audits the ledger now (ADR 14, what {@code anneal ledger verify} checks) in one snapshot,
   * while the service goes on; one audit at a time.
   */
  private void ledgerAudit(RoutingContext rc) {
    Integer max = countParam(rc, "maxFindings", 100, 10_000);
    if (max == null) return;
    long started = System.currentTimeMillis();
    admin(rc).compose(v -> {
      var running = store.audit(max);
      if (running.isEmpty()) {
        return Future.<io.anneal.billing.ledger.LedgerAudit.Report>failedFuture(new Problem("audit-running", 409,
            "An audit is running", "the ledger is being audited; ask again when it is done"));
      }
      return Future.fromCompletionStage(running.get(), vertx.getOrCreateContext());
    }).onSuccess(r -> rc.json(new JsonObject(r.toMap()).put("startedAt", java.time.Instant.ofEpochMilli(started).toString())
        .put("tookMs", System.currentTimeMillis() - started))).onFailure(e -> fail(rc, e));
  }

  /**
   * Admin: this instance's roles, and which instance plays each role only one may play at a time
   * (cluster mode, ADR 19): the lease's epoch, its last holder and whether that holder holds it now.
   */
  private void cluster(RoutingContext rc) {
    admin(rc).compose(v -> Future.fromCompletionStage(store.read(io.anneal.store.RoleLease::all), vertx.getOrCreateContext()))
        .onSuccess(leases -> {
          JsonArray a = new JsonArray();
          for (io.anneal.store.RoleLease.Held h : leases) {
            a.add(new JsonObject().put("role", h.role()).put("epoch", h.epoch()).put("holder", h.holder())
                .put("since", java.time.Instant.ofEpochMilli(h.acquiredAt()).toString()).put("heldNow", h.heldNow()));
          }
          JsonObject out = new JsonObject().put("cluster", config.cluster())
              .put("roles", new JsonArray(new java.util.ArrayList<>(new java.util.TreeSet<>(config.roles()))));
          if (config.cluster()) out.put("membersSeen", membersSeen.getAsInt()).put("quorum", config.clusterQuorum());
          rc.json(out.put("leases", a));
        }).onFailure(e -> fail(rc, e));
  }

  /**
   * Admin: a backup of the embedded store while the service runs (the database as one snapshot, with
   * the node key, node id, admin key and models) into the data directory's {@code backups/}. A
   * PostgreSQL store is refused: PostgreSQL's own tools back it up.
   */
  private void backup(RoutingContext rc) {
    long started = System.currentTimeMillis();
    admin(rc).compose(v -> {
      if (store.database().postgres()) {
        return Future.<io.anneal.store.Backups.Written>failedFuture(new Problem("backup-unsupported", 409, "Backup elsewhere",
            "the store is PostgreSQL: back it up with PostgreSQL's tools (pg_dump, or base backups with WAL archiving)"));
      }
      return Future.fromCompletionStage(io.anneal.store.Backups.take(store, config.dataDir(), config.backupKeep(), config.backupPassphrase()),
          vertx.getOrCreateContext())
          .recover(e -> {
            Throwable cause = e instanceof java.util.concurrent.CompletionException && e.getCause() != null ? e.getCause() : e;
            // e.g. a full disk: said as such; nothing half-written is left behind
            return cause instanceof java.io.UncheckedIOException io ? Future.failedFuture(new Problem("backup-failed", 500,
                "Backup failed", "could not write the backup: " + io.getCause().getMessage())) : Future.failedFuture(e);
          });
    }).onSuccess(w -> {
      LOG.info("backup written: " + w.file().toAbsolutePath() + " (" + w.bytes() + " bytes)");
      rc.response().setStatusCode(201).putHeader("content-type", "application/json").end(new JsonObject()
          .put("file", w.file().toAbsolutePath().toString()).put("bytes", w.bytes()).put("entries", new JsonArray(w.entries()))
          .put("tookMs", System.currentTimeMillis() - started).encode());
    }).onFailure(e -> fail(rc, e));
  }

  // ------------------------------------------------------------------ node keys (ADR 18)

  private static JsonObject nodeKeyJson(NodeKey k) {
    return new JsonObject().put("publicKey", k.publicKey())
        .put("fingerprint", ReceiptCheck.fingerprint(k.publicKey())).put("state", k.state())
        .put("addedAtMs", k.addedAtMs()).put("retiredAtMs", k.retiredAtMs()).put("revokedAtMs", k.revokedAtMs());
  }

  /** Every signing key a node has had, the current one first (public: they are what receipts are checked with). */
  private void nodeKeys(RoutingContext rc) {
    String nodeId = rc.pathParam("nodeId");
    Future.fromCompletionStage(store.read(c -> SqlLedger.nodeKeys(c, nodeId)), vertx.getOrCreateContext()).onSuccess(keys -> {
      if (keys.isEmpty()) {
        fail(rc, Problem.notFound("no node " + nodeId + " is registered"));
        return;
      }
      JsonArray list = new JsonArray();
      keys.forEach(k -> list.add(nodeKeyJson(k)));
      rc.json(new JsonObject().put("nodeId", nodeId).put("keys", list));
    }).onFailure(e -> fail(rc, e));
  }

  /**
   * Admin: a new signing key for a node this instance runs; the previous one is retired (its
   * signatures stay valid) or, with {@code revokePrevious}, revoked. 201 with the new key.
   */
  private void rotateNodeKey(RoutingContext rc) {
    String nodeId = rc.pathParam("nodeId");
    admin(rc).compose(v -> {
      JsonObject body = optionalBody(rc);
      checkFields(body, Set.of("revokePrevious"));
      Object revoke = body.getValue("revokePrevious", false);
      if (!(revoke instanceof Boolean)) {
        throw Problem.invalid("invalid-field", "Invalid field", new JsonArray().add(new JsonObject().put("field", "revokePrevious")
            .put("code", "invalid-type").put("message", "revokePrevious must be true or false")));
      }
      return vertx.eventBus().<JsonObject>request(Addresses.workerRotateKey(nodeId), new JsonObject().put("revokePrevious", revoke),
          new io.vertx.core.eventbus.DeliveryOptions().setSendTimeout(60_000)).map(m -> m.body())
          .recover(e -> {
            if (!(e instanceof io.vertx.core.eventbus.ReplyException re)) return Future.failedFuture(e);
            if (re.failureType() == io.vertx.core.eventbus.ReplyFailure.NO_HANDLERS) {
              return Future.fromCompletionStage(store.read(c -> SqlLedger.nodeKey(c, nodeId)), vertx.getOrCreateContext())
                  .compose(k -> Future.failedFuture(k.isEmpty() ? Problem.notFound("no node " + nodeId + " is registered")
                      : new Problem("node-not-local", 409, "Node not run here",
                          "node " + nodeId + " is not run by this instance: rotate its key on the instance that runs it")));
            }
            if (re.failureCode() == 409) return Future.failedFuture(new Problem("key-rotation-refused", 409, "Key not rotated", re.getMessage()));
            return Future.failedFuture(new Problem("key-rotation-failed", 500, "Key rotation failed", re.getMessage()));
          });
    }).onSuccess(reply -> rc.response().setStatusCode(201).putHeader("content-type", "application/json").end(reply.encode()))
        .onFailure(e -> fail(rc, e));
  }

  /**
   * Admin: revokes a retired key of a node, named by its fingerprint; every settlement after this
   * refuses its signatures. The key a node signs with now cannot be revoked: rotate it with
   * {@code revokePrevious} instead (409).
   */
  private void revokeNodeKey(RoutingContext rc) {
    String nodeId = rc.pathParam("nodeId");
    String given = rc.pathParam("fingerprint");
    String fingerprint = given.startsWith("sha256:") ? given : "sha256:" + given;
    admin(rc).compose(v -> Future.fromCompletionStage(store.writer().submitAlone(c -> {
      // the barrier first (revokeNodeKey takes it): then the keys read are those the revocation sees
      SqlLedger.settlementBarrier(c);
      Optional<NodeKey> key = SqlLedger.nodeKeys(c, nodeId).stream()
          .filter(k -> ReceiptCheck.fingerprint(k.publicKey()).equalsIgnoreCase(fingerprint)).findFirst();
      if (key.isEmpty()) return Optional.<NodeKey>empty();
      if (SqlLedger.revokeNodeKey(c, nodeId, key.get().publicKey(), System::currentTimeMillis)
          == NodeKey.Revocation.CURRENT) {
        return Optional.of(key.get()); // not revoked: answered below
      }
      return SqlLedger.nodeKeys(c, nodeId).stream().filter(k -> k.publicKey().equals(key.get().publicKey())).findFirst();
    }), vertx.getOrCreateContext())).onSuccess(found -> {
      if (found.isEmpty()) {
        fail(rc, Problem.notFound("node " + nodeId + " has no key " + fingerprint));
        return;
      }
      NodeKey k = found.get();
      if (k.current()) {
        fail(rc, new Problem("key-in-use", 409, "Key in use", "node " + nodeId + " signs with " + fingerprint
            + " now: rotate its key with revokePrevious=true instead"));
        return;
      }
      vertx.eventBus().publish(BillingAddresses.NODE_KEYS_CHANGED, new JsonObject().put("nodeId", nodeId));
      LOG.warning("node " + nodeId + ": key " + fingerprint + " revoked; receipts signed with it are refused from now on");
      rc.json(nodeKeyJson(k).put("nodeId", nodeId));
    }).onFailure(e -> fail(rc, e));
  }

  /** Admin, or the tenant itself: one deposit's state by its reference. */
  private void depositStatus(RoutingContext rc) {
    String tenantId = rc.pathParam("id");
    String ref = rc.pathParam("reference");
    adminOrTenant(rc, tenantId, "a tenant may read only its own deposits")
        .compose(v -> Future.fromCompletionStage(store.read(c -> Mints.status(c, tenantId, ref)), vertx.getOrCreateContext()))
        .onSuccess(st -> {
          if (st.isEmpty()) {
            fail(rc, Problem.notFound("no deposit " + ref + " of tenant " + tenantId));
          } else {
            rc.json(new JsonObject(new java.util.LinkedHashMap<>(st.get())));
          }
        })
        .onFailure(e -> fail(rc, e));
  }

  /**
   * Admin: a treasury grant to the bootstrap fund (bme-spec 16.3): AKT from outside, minted into ACT
   * for the fund at the next mint epoch, like a deposit (202; idempotent on {@code reference}).
   */
  private void grant(RoutingContext rc) {
    admin(rc).compose(v -> {
      JsonObject body = parseBody(rc.body().buffer());
      checkFields(body, Set.of("akt", "reference"));
      long uakt = parseAkt(body.getValue("akt"));
      if (!(body.getValue("reference") instanceof String ref) || ref.isBlank() || ref.length() > 100) {
        throw new Problem("invalid-deposit", 422, "Invalid grant", "reference is required (1 to 100 characters)");
      }
      return Future.fromCompletionStage(store.writer().submit(c -> {
        Mints.Requested r = Mints.grantToFund(c, ref, uakt, oracle.get(), bmeParams, System.currentTimeMillis());
        return Map.entry(r, r.refusal() == null ? Mints.grantStatus(c, ref) : Optional.<Map<String, Object>>empty());
      }), vertx.getOrCreateContext());
    }).onSuccess(e -> {
      Mints.Requested r = e.getKey();
      if (r.refusal() != null) {
        int status = refusalStatus(r.refusal());
        fail(rc, new Problem("bme-refused", status, "Grant not converted", r.refusal() + ": " + r.detail()));
        return;
      }
      respondQueued(rc, r, new JsonObject(new java.util.LinkedHashMap<>(e.getValue().orElseThrow())));
    }).onFailure(e -> fail(rc, e));
  }

  private void grantStatus(RoutingContext rc) {
    String ref = rc.pathParam("reference");
    admin(rc).compose(v -> Future.fromCompletionStage(store.read(c -> Map.entry(Mints.grantStatus(c, ref),
            SqlLedger.balance(c, io.anneal.billing.ledger.BootstrapPayouts.FUND, "uact"))), vertx.getOrCreateContext()))
        .onSuccess(e -> {
          if (e.getKey().isEmpty()) {
            fail(rc, Problem.notFound("no grant " + ref));
          } else {
            rc.json(new JsonObject(new java.util.LinkedHashMap<>(e.getKey().get())).put("fundBalanceUact", e.getValue()));
          }
        }).onFailure(e -> fail(rc, e));
  }

  /**
   * The bootstrap fund's windows, newest first ({@code ?limit=}, default 24, at most 1,000): the span each
   * paid floors for (ADR 21), how many providers it topped up, how much, and the fund after it.
   */
  private void bootstrapWindows(RoutingContext rc) {
    Integer n = countParam(rc, "limit", 24, 1000);
    if (n == null) return;
    Future.fromCompletionStage(store.read(c -> Map.entry(io.anneal.billing.ledger.BootstrapPayouts.windows(c, n),
            SqlLedger.balance(c, io.anneal.billing.ledger.BootstrapPayouts.FUND, "uact"))), vertx.getOrCreateContext())
        .onSuccess(e -> {
          JsonArray a = new JsonArray();
          e.getKey().forEach(m -> a.add(new JsonObject(new java.util.LinkedHashMap<>(m))));
          rc.json(new JsonObject().put("enabled", config.bootstrapFund()).put("windowSeconds", config.priceWindowSeconds())
              .put("fundUact", e.getValue()).put("windows", a));
        }).onFailure(e -> fail(rc, e));
  }

  /** Admin: pay a provider's ACT out in AKT at the next redemption epoch ({@code act} omitted = all of it). */
  private void requestPayout(RoutingContext rc) {
    String nodeId = rc.pathParam("nodeId");
    adminOrProviderOf(rc, nodeId).compose(v -> {
      JsonObject body = optionalBody(rc);
      checkFields(body, Set.of("act", "reference"));
      Long uact = body.getValue("act") == null ? null : parseAct(body.getValue("act"));
      String ref = body.getValue("reference") instanceof String s && !s.isBlank() ? s
          : Optional.ofNullable(rc.request().getHeader("Idempotency-Key")).orElse(Ids.next("po_"));
      return Future.fromCompletionStage(store.writer().submitAlone(c -> {
        SqlLedger.settlementBarrier(c); // first: the balance read and the receipts named are the same settlements
        long amount = uact != null ? uact : SqlLedger.balance(c, io.anneal.billing.ledger.Accounts.provider(nodeId), "uact");
        return Redemptions.request(c, nodeId, amount, "api:" + ref, oracle.get(), System.currentTimeMillis());
      }), vertx.getOrCreateContext());
    }).onSuccess(r -> {
      if (r.refusal() != null) {
        int status = refusalStatus(r.refusal());
        fail(rc, new Problem(r.refusal() == LedgerRefusal.INSUFFICIENT_FUNDS ? "insufficient-funds" : "bme-refused", status,
            "Payout not queued", r.refusal() + ": " + r.detail()));
        return;
      }
      rc.response().setStatusCode(r.duplicate() ? 200 : 202).putHeader("content-type", "application/json")
          .end(new JsonObject().put("id", r.id()).put("nodeId", nodeId).put("uact", r.uact()).put("state", "PENDING")
              .put("duplicate", r.duplicate()).put("executesAt", "next redemption epoch").encode());
    }).onFailure(e -> fail(rc, e));
  }

  /**
   * A provider's ACT and AKT balances and its payouts, newest first, each with the receipts it redeems (the
   * admin, or the node's provider account).
   */
  private void payouts(RoutingContext rc) {
    String nodeId = rc.pathParam("nodeId");
    adminOrProviderOf(rc, nodeId).compose(v -> Future.fromCompletionStage(store.read(c -> {
      JsonObject out = new JsonObject().put("nodeId", nodeId)
          .put("uact", SqlLedger.balance(c, io.anneal.billing.ledger.Accounts.provider(nodeId), "uact"))
          .put("uakt", SqlLedger.balance(c, io.anneal.billing.ledger.Accounts.provider(nodeId), "uakt"));
      JsonArray list = new JsonArray();
      for (Map<String, Object> m : Redemptions.ofProvider(c, nodeId, 100)) {
        JsonObject p = new JsonObject(new java.util.LinkedHashMap<>(m));
        p.put("receiptIds", new JsonArray(Redemptions.receiptsOf(c, (Long) m.get("id")).stream().limit(1000).toList()));
        list.add(p);
      }
      return out.put("payouts", list);
    }), vertx.getOrCreateContext())).onSuccess(rc::json).onFailure(e -> fail(rc, e));
  }

  /** ACT as a decimal string or number with at most 6 decimals, > 0. */
  static long parseAct(Object v) {
    return parseAmount(v, "act", "invalid-payout", "Invalid payout", "\"5\"");
  }

  /** AKT as a decimal string or number with at most 6 decimals, > 0. */
  static long parseAkt(Object v) {
    return parseAmount(v, "akt", "invalid-deposit", "Invalid deposit", "\"100\"");
  }

  /** A token amount in whole units with at most 6 decimals, > 0 and at most 1e9, to base units. */
  private static long parseAmount(Object v, String field, String type, String title, String example) {
    BigDecimal x;
    try {
      x = v instanceof String s ? new BigDecimal(s.trim()) : v instanceof Number n ? new BigDecimal(n.toString()) : null;
    } catch (NumberFormatException e) {
      x = null;
    }
    if (x == null || x.signum() <= 0 || x.stripTrailingZeros().scale() > 6 || x.compareTo(BigDecimal.valueOf(1_000_000_000L)) > 0) {
      throw Problem.invalid(type, title, new JsonArray().add(new JsonObject().put("field", field).put("code", "invalid")
          .put("message", field + " must be a positive amount with at most 6 decimals, e.g. " + example)));
    }
    return x.movePointRight(6).longValueExact();
  }

  /** Succeeds for the admin key or tenant {@code tenantId}'s own key: 401 without a key, 403 with another tenant's. */
  private Future<Void> adminOrTenant(RoutingContext rc, String tenantId, String forbidden) {
    Optional<String> key = bearer(rc.request().getHeader("Authorization"));
    if (key.isEmpty()) return Future.failedFuture(Problem.unauthorized());
    return Future.fromCompletionStage(tenants.isAdminKey(key.get()), vertx.getOrCreateContext())
        .compose(isAdmin -> isAdmin ? Future.<Void>succeededFuture() : tenantOf(rc, key.get()).compose(t -> t.id().equals(tenantId)
            ? Future.<Void>succeededFuture() : Future.<Void>failedFuture(Problem.forbidden(forbidden))));
  }

  /** The request's JSON object, or an empty one when it has no body. */
  private static JsonObject optionalBody(RoutingContext rc) {
    return rc.body().buffer() == null || rc.body().buffer().length() == 0 ? new JsonObject() : parseBody(rc.body().buffer());
  }

  private void balance(RoutingContext rc) {
    String tenantId = rc.pathParam("id");
    adminOrTenant(rc, tenantId, "a tenant may read only its own balance")
        .compose(v -> Future.fromCompletionStage(tenants.byId(tenantId), vertx.getOrCreateContext()))
        .compose(t -> {
          if (t.isEmpty()) return Future.failedFuture(Problem.notFound("no tenant " + tenantId));
          return balances(tenantId);
        })
        .onSuccess(b -> rc.json(Statements.amounts(b).put("tenantId", tenantId)))
        .onFailure(e -> fail(rc, e));
  }

  /**
   * A tenant's statement of account, to the admin or the tenant: the journal entries that moved its
   * balances, newest first, {@code limit} (1..500, 50 by default) before entry {@code before} (the
   * previous page's {@code next}), each with its change and the balances after it; as JSON, or as CSV
   * with {@code format=csv} (the next page in a {@code Link} header). With {@code from} and/or {@code to}
   * the entries of that period, and (JSON) its opening and closing balances and totals by kind.
   */
  private void statement(RoutingContext rc) {
    String tenantId = rc.pathParam("id");
    statement(rc, Statements.Of.tenant(tenantId), () -> ownStatement(rc, tenantId),
        (c, before, limit, period) -> AccountStatement.read(c, tenantId, before, limit, period));
  }

  /**
   * Admin: a provider's statement (node {@code nodeId}): the entries that moved what it earned (ACT) and was
   * paid directly (AKT) — settlements, bootstrap payouts, redemptions — as a tenant's statement reads.
   */
  private void providerStatement(RoutingContext rc) {
    String nodeId = rc.pathParam("nodeId");
    statement(rc, Statements.Of.provider(nodeId), () -> knownProvider(rc, nodeId),
        (c, before, limit, period) -> AccountStatement.readProvider(c, nodeId, before, limit, period));
  }

  /** Reads a page of a statement. */
  private interface StatementRead {
    AccountStatement.Page read(java.sql.Connection c, Long before, int limit, AccountStatement.Period period)
        throws java.sql.SQLException;
  }

  /** A page of {@code of}'s statement once {@code allowed} succeeds, the query checked first (422 naming what is wrong). */
  private void statement(RoutingContext rc, Statements.Of of, java.util.function.Supplier<Future<Void>> allowed, StatementRead read) {
    Integer limit = countParam(rc, "limit", Statements.DEFAULT_LIMIT, AccountStatement.MAX_LIMIT);
    if (limit == null) return;
    Long before = entryIdParam(rc, rc.queryParams().get("before"), "before");
    if (before == null && rc.queryParams().get("before") != null) return;
    String format = rc.queryParams().get("format");
    if (format != null && !format.equals("json") && !format.equals("csv")) {
      fail(rc, new Problem("invalid-query", 422, "Invalid query", "format must be json (the default) or csv"));
      return;
    }
    AccountStatement.Period period;
    try {
      period = Statements.period(rc.queryParams().get("from"), rc.queryParams().get("to"));
    } catch (IllegalArgumentException e) {
      fail(rc, new Problem("invalid-query", 422, "Invalid query", e.getMessage()));
      return;
    }
    allowed.get()
        .compose(v -> Future.fromCompletionStage(store.read(c -> read.read(c, before, limit, period)), vertx.getOrCreateContext()))
        .onSuccess(p -> {
          if (!"csv".equals(format)) {
            rc.json(Statements.page(of, p, limit));
            return;
          }
          String next = Statements.next(of, p, limit, "csv");
          if (next != null) rc.response().putHeader("Link", "<" + next + ">; rel=\"next\"");
          rc.response().putHeader("content-type", "text/csv; charset=utf-8")
              .putHeader("Content-Disposition", "inline; filename=\"statement-" + of.id() + ".csv\"").end(Statements.csv(of, p));
        })
        .onFailure(e -> fail(rc, e));
  }

  /** One entry of a tenant's statement, with, for a settlement, the tenant's runs it settled. */
  private void statementEntry(RoutingContext rc) {
    String tenantId = rc.pathParam("id");
    Long txId = entryIdParam(rc, rc.pathParam("txId"), "txId");
    if (txId == null) return;
    ownStatement(rc, tenantId)
        .compose(v -> Future.fromCompletionStage(store.read(c -> AccountStatement.entry(c, tenantId, txId)),
            vertx.getOrCreateContext()))
        .compose(d -> d.isPresent() ? Future.succeededFuture(d.get())
            : Future.failedFuture(Problem.notFound("no entry " + txId + " on the statement of tenant " + tenantId)))
        .onSuccess(d -> rc.json(Statements.detail(Statements.Of.tenant(tenantId), d)))
        .onFailure(e -> fail(rc, e));
  }

  /** Admin: one entry of a provider's statement, with, for a settlement, the node's runs it settled (what it earned). */
  private void providerStatementEntry(RoutingContext rc) {
    String nodeId = rc.pathParam("nodeId");
    Long txId = entryIdParam(rc, rc.pathParam("txId"), "txId");
    if (txId == null) return;
    knownProvider(rc, nodeId)
        .compose(v -> Future.fromCompletionStage(store.read(c -> AccountStatement.providerEntry(c, nodeId, txId)),
            vertx.getOrCreateContext()))
        .compose(d -> d.isPresent() ? Future.succeededFuture(d.get())
            : Future.failedFuture(Problem.notFound("no entry " + txId + " on the statement of provider " + nodeId)))
        .onSuccess(d -> rc.json(Statements.detail(Statements.Of.provider(nodeId), d)))
        .onFailure(e -> fail(rc, e));
  }

  // ------------------------------------------------------------------ provider accounts (ADR 32)

  /**
   * Succeeds for the admin or the provider account that node {@code nodeId} belongs to; any other key is
   * refused (403), no key 401.
   */
  private Future<Void> adminOrProviderOf(RoutingContext rc, String nodeId) {
    return adminOr(rc, a -> a.nodes().contains(nodeId), "node " + nodeId + " is not one of this provider account's nodes",
        "an admin key or the key of node " + nodeId + "'s provider account is required");
  }

  /**
   * Succeeds for the admin, or a provider account {@code allowed} accepts; refuses (403) another account
   * with {@code notAllowed} and any other key with {@code neither}; no key 401.
   */
  private Future<Void> adminOr(RoutingContext rc, java.util.function.Predicate<io.anneal.store.ProviderStore.Account> allowed,
      String notAllowed, String neither) {
    Optional<String> key = bearer(rc.request().getHeader("Authorization"));
    if (key.isEmpty()) return Future.failedFuture(Problem.unauthorized());
    return Future.fromCompletionStage(tenants.isAdminKey(key.get()), vertx.getOrCreateContext()).compose(admin -> admin
        ? Future.<Void>succeededFuture()
        : Future.fromCompletionStage(providers.byKey(key.get()), vertx.getOrCreateContext()).compose(a -> a.isPresent()
            && allowed.test(a.get()) ? Future.<Void>succeededFuture()
            : Future.failedFuture(Problem.forbidden(a.isPresent() ? notAllowed : neither))));
  }

  /** The account a request's provider key authenticates: 401 without a key, 403 for another kind of key. */
  private Future<io.anneal.store.ProviderStore.Account> providerAccountOf(RoutingContext rc) {
    Optional<String> key = bearer(rc.request().getHeader("Authorization"));
    if (key.isEmpty()) return Future.failedFuture(Problem.unauthorized());
    return Future.fromCompletionStage(providers.byKey(key.get()), vertx.getOrCreateContext()).compose(a -> {
      if (a.isPresent()) return Future.succeededFuture(a.get());
      // another kind of key is refused (403); one that authenticates nobody is not a key (401)
      return Future.fromCompletionStage(tenants.isAdminKey(key.get()), vertx.getOrCreateContext())
          .compose(admin -> admin ? Future.succeededFuture(true)
              : Future.fromCompletionStage(tenants.ownerOf(key.get()), vertx.getOrCreateContext()).map(java.util.Optional::isPresent))
          .compose(known -> Future.failedFuture(known ? Problem.forbidden("a provider account's key is required") : Problem.unauthorized()));
    });
  }

  /** An account as the API shows it; with balances, each node's ACT earned and AKT paid. */
  private Future<JsonObject> providerAccountView(io.anneal.store.ProviderStore.Account a, boolean balances) {
    JsonObject o = new JsonObject().put("id", a.id()).put("name", a.name()).put("createdAtMs", a.createdAtMs())
        .put("keyLastUsedAtMs", a.keyLastUsedAtMs());
    if (!balances) return Future.succeededFuture(o.put("nodes", new JsonArray(a.nodes())));
    return Future.fromCompletionStage(store.read(c -> {
      JsonArray nodes = new JsonArray();
      for (String node : a.nodes()) {
        String account = io.anneal.billing.ledger.Accounts.provider(node);
        long uact = SqlLedger.balance(c, account, "uact");
        nodes.add(new JsonObject().put("nodeId", node).put("uact", uact).put("uakt", SqlLedger.balance(c, account, "uakt"))
            .put("act", BigDecimal.valueOf(uact, 6).toPlainString()).put("known", SqlLedger.nodeKey(c, node).isPresent())
            .put("statement", "/api/v1/providers/" + node + "/statement").put("payouts", "/api/v1/providers/" + node + "/payouts"));
      }
      return o.put("nodes", nodes);
    }), vertx.getOrCreateContext());
  }

  /** Node ids from {@code body.nodes}: a list of at most 1,000 ids, each 1-64 characters without spaces or / (422 otherwise). */
  private static List<String> nodeIdsOf(JsonObject body, boolean required) {
    Object v = body.getValue("nodes");
    if (v == null && !required) return List.of();
    List<String> out = new java.util.ArrayList<>();
    if (v instanceof JsonArray a && a.size() <= 1000) {
      for (Object n : a) {
        if (!(n instanceof String s) || !s.matches("[^/\\s]{1,64}")) { // a node id as it appears in a path
          out = null;
          break;
        }
        out.add(s);
      }
    } else {
      out = null;
    }
    if (out == null) {
      throw Problem.invalid("invalid-provider-account", "Invalid provider account", new JsonArray().add(new JsonObject()
          .put("field", "nodes").put("code", "invalid")
          .put("message", "nodes must be a list of at most 1000 node ids (1-64 characters, no spaces or /)")));
    }
    return out;
  }

  /** What a refused change of a provider account answers: 409 naming what is taken. */
  private static Throwable providerRefusal(Throwable e) {
    Throwable cause = e instanceof java.util.concurrent.CompletionException && e.getCause() != null ? e.getCause() : e;
    if (cause instanceof IllegalStateException ise && ise.getMessage() != null) {
      for (io.anneal.store.ProviderStore.Refusal r : io.anneal.store.ProviderStore.Refusal.values()) {
        if (ise.getMessage().startsWith(r.name() + ": ")) {
          return new Problem("conflict", 409, switch (r) {
            case NAME_TAKEN -> "Name taken";
            case KEY_TAKEN -> "Key in use";
            case NODE_TAKEN -> "Node taken";
          }, ise.getMessage().substring(r.name().length() + 2));
        }
      }
    }
    return e;
  }

  /**
   * Admin: a provider account ({@code name}, {@code nodes}, optional {@code apiKey}, else a {@code pk_} key
   * generated), answered once with its key.
   */
  private void createProviderAccount(RoutingContext rc) {
    admin(rc).compose(v -> {
      JsonObject body = parseBody(rc.body().buffer());
      checkFields(body, Set.of("name", "nodes", "apiKey"));
      String name = body.getValue("name") instanceof String s ? s.trim() : null;
      if (name == null || !name.matches("[A-Za-z0-9_.@-]{1,100}")) {
        throw Problem.invalid("invalid-provider-account", "Invalid provider account", new JsonArray().add(new JsonObject()
            .put("field", "name").put("code", "invalid").put("message", "name must be 1-100 characters of letters, digits, _ . @ -")));
      }
      List<String> nodes = nodeIdsOf(body, false);
      String apiKey = apiKeyOf(body, "invalid-provider-account", "Invalid provider account", "pk_");
      return Future.fromCompletionStage(providers.create(name, apiKey, nodes), vertx.getOrCreateContext())
          .recover(e -> Future.failedFuture(providerRefusal(e)))
          .compose(a -> providerAccountView(a, false)).map(o -> o.put("apiKey", apiKey));
    }).onSuccess(o -> rc.response().setStatusCode(201).putHeader("content-type", "application/json").end(o.encode()))
        .onFailure(e -> fail(rc, e));
  }

  /** Admin: every provider account, in the order made, with its nodes (never its key). */
  private void providerAccounts(RoutingContext rc) {
    admin(rc).compose(v -> Future.fromCompletionStage(providers.list(), vertx.getOrCreateContext()))
        .compose(list -> {
          JsonArray out = new JsonArray();
          list.forEach(a -> out.add(new JsonObject().put("id", a.id()).put("name", a.name()).put("nodes", new JsonArray(a.nodes()))
              .put("createdAtMs", a.createdAtMs()).put("keyLastUsedAtMs", a.keyLastUsedAtMs())));
          return Future.succeededFuture(new JsonObject().put("accounts", out));
        }).onSuccess(rc::json).onFailure(e -> fail(rc, e));
  }

  /** The account of the request's provider key, with each node's balances: what the web UI shows a provider. */
  private void myProviderAccount(RoutingContext rc) {
    providerAccountOf(rc).compose(a -> providerAccountView(a, true)).onSuccess(rc::json).onFailure(e -> fail(rc, e));
  }

  /** A provider account with its nodes' balances (the admin, or the account itself). */
  private void providerAccount(RoutingContext rc) {
    String id = rc.pathParam("id");
    adminOrProviderAccount(rc, id)
        .compose(v -> Future.fromCompletionStage(providers.byId(id), vertx.getOrCreateContext()))
        .compose(a -> a.isPresent() ? providerAccountView(a.get(), true) : Future.failedFuture(Problem.notFound("no provider account " + id)))
        .onSuccess(rc::json).onFailure(e -> fail(rc, e));
  }

  /** Succeeds for the admin or provider account {@code id} itself. */
  private Future<Void> adminOrProviderAccount(RoutingContext rc, String id) {
    String refusal = "an admin key or this provider account's key is required";
    return adminOr(rc, a -> a.id().equals(id), refusal, refusal);
  }

  /** Admin: the account's nodes become {@code nodes} (replaced); 409 when one is another account's. */
  private void setProviderNodes(RoutingContext rc) {
    String id = rc.pathParam("id");
    admin(rc).compose(v -> {
      JsonObject body = parseBody(rc.body().buffer());
      checkFields(body, Set.of("nodes"));
      List<String> nodes = nodeIdsOf(body, true);
      return Future.fromCompletionStage(providers.setNodes(id, nodes), vertx.getOrCreateContext())
          .recover(e -> Future.failedFuture(providerRefusal(e)));
    }).compose(a -> a.isPresent() ? providerAccountView(a.get(), false) : Future.failedFuture(Problem.notFound("no provider account " + id)))
        .onSuccess(rc::json).onFailure(e -> fail(rc, e));
  }

  /**
   * A new key for provider account {@code id} (the admin, or the account with its current key): given as
   * {@code apiKey} or generated, answered once; the old key is refused from now on, on every instance.
   */
  private void replaceProviderKey(RoutingContext rc) {
    String id = rc.pathParam("id");
    adminOrProviderAccount(rc, id).compose(v -> {
      JsonObject body = optionalBody(rc);
      checkFields(body, Set.of("apiKey"));
      String apiKey = apiKeyOf(body, "invalid-key", "Invalid key", "pk_");
      return Future.fromCompletionStage(providers.replaceKey(id, apiKey), vertx.getOrCreateContext())
          .recover(e -> Future.failedFuture(providerRefusal(e)))
          .compose(a -> a.isPresent() ? Future.succeededFuture(new JsonObject().put("id", id).put("apiKey", apiKey))
              : Future.failedFuture(Problem.notFound("no provider account " + id)));
    }).onSuccess(o -> rc.response().setStatusCode(201).putHeader("content-type", "application/json").end(o.encode()))
        .onFailure(e -> fail(rc, e));
  }

  /**
   * Succeeds for the admin or the node's provider account (ADR 32) when node {@code nodeId} is known to
   * the ledger (it registered a key).
   */
  private Future<Void> knownProvider(RoutingContext rc, String nodeId) {
    return adminOrProviderOf(rc, nodeId)
        .compose(v -> Future.fromCompletionStage(store.read(c -> SqlLedger.nodeKey(c, nodeId)), vertx.getOrCreateContext()))
        .compose(k -> k.isPresent() ? Future.<Void>succeededFuture()
            : Future.failedFuture(Problem.notFound("no node " + nodeId + " in the ledger (a node is known once it registers its key)")));
  }

  /** Succeeds for the admin or the tenant itself when the tenant exists. */
  private Future<Void> ownStatement(RoutingContext rc, String tenantId) {
    return adminOrTenant(rc, tenantId, "a tenant may read only its own statement")
        .compose(v -> Future.fromCompletionStage(tenants.byId(tenantId), vertx.getOrCreateContext()))
        .compose(t -> t.isPresent() ? Future.<Void>succeededFuture() : Future.failedFuture(Problem.notFound("no tenant " + tenantId)));
  }

  /** A journal entry's id (a positive integer), or null once answered 422 (or when {@code raw} is null). */
  private static Long entryIdParam(RoutingContext rc, String raw, String name) {
    if (raw == null) return null;
    try {
      long id = Long.parseLong(raw);
      if (id > 0) return id;
    } catch (NumberFormatException e) {
      // answered below
    }
    fail(rc, new Problem("invalid-query", 422, "Invalid query", name + " must be a journal entry id (a positive integer)"));
    return null;
  }

  // ------------------------------------------------------------------ WebSocket

  private void onWebSocket(ServerWebSocket ws) {
    if (!"/api/v1/ws".equals(ws.path())) {
      ws.close((short) 1008, "unknown path; use /api/v1/ws");
      return;
    }
    WsSession session = new WsSession(ws, this);
    Optional<String> key = bearer(ws.headers().get("Authorization"));
    if (key.isPresent()) {
      ws.pause();
      authenticate(key.get()).onComplete(ar -> {
        if (ar.succeeded()) {
          session.authenticated(ar.result(), key.get());
        } else {
          session.sendError(null, ar.cause());
          ws.close((short) 1008, "unauthorized");
        }
        ws.resume();
      });
    }
  }

  Future<JsonObject> cancelFor(Tenant t, String jobId) {
    return cancel(t, jobId);
  }

  void register(WsSession s) {
    sessionsByTenant.computeIfAbsent(s.tenant().id(), k -> ConcurrentHashMap.newKeySet()).add(s);
  }

  void unregister(WsSession s) {
    if (s.tenant() == null) return;
    Set<WsSession> set = sessionsByTenant.get(s.tenant().id());
    if (set != null) set.remove(s);
  }

  // ---------------------------------------------------------------- webhooks

  /** Webhooks a tenant may hold at once. */
  static final int MAX_WEBHOOKS = 20;

  /** Whose webhooks a request's key reaches: a tenant's, or (ADR 32) a provider account's. */
  private record WebhookOwner(String id, boolean provider) {}

  /**
   * The owner of the request's key: its tenant (a read-only key only reads, as everywhere), else its
   * provider account; 401 when it is neither.
   */
  private Future<WebhookOwner> webhookOwner(RoutingContext rc) {
    String key = bearer(rc.request().getHeader("Authorization")).orElse(null);
    return tenantOf(rc, key).map(t -> new WebhookOwner(t.id(), false)).recover(e -> {
      if (key == null || !(e instanceof Problem p) || p.status() != 401) return Future.failedFuture(e);
      return Future.fromCompletionStage(providers.byKey(key), vertx.getOrCreateContext())
          .compose(a -> a.isPresent() ? Future.succeededFuture(new WebhookOwner(a.get().id(), true)) : Future.failedFuture(e));
    });
  }

  /**
   * A tenant registers {@code {"url": "https://…", "events": ["job.succeeded", …] or ["*"], "secret": optional}};
   * a provider account (ADR 32) {@code "events": ["payout.executed", "payout.cancelled"]}, its only events. The
   * answer (201) carries the secret deliveries are signed with, the only time it is shown.
   */
  private void createWebhook(RoutingContext rc) {
    webhookOwner(rc).compose(t -> {
      JsonObject body = parseBody(rc.body().buffer());
      checkFields(body, Set.of("url", "events", "secret", "lowBalanceAct"));
      String url = webhookUrl(body.getValue("url"));
      Set<String> events = t.provider() ? providerWebhookEvents(body.getValue("events")) : webhookEvents(body.getValue("events"));
      Long lowBalance = null;
      if (events.contains(io.anneal.webhook.WebhookStore.BALANCE_LOW) != body.containsKey("lowBalanceAct")) {
        throw new Problem("invalid-webhook", 422, "Invalid webhook", "a webhook for balance.low gives lowBalanceAct (the ACT"
            + " available below which it is told, e.g. \"25\"), and only such a webhook");
      }
      if (body.containsKey("lowBalanceAct")) {
        lowBalance = parseAmount(body.getValue("lowBalanceAct"), "lowBalanceAct", "invalid-webhook", "Invalid webhook", "\"25\"");
      }
      Object secretField = body.getValue("secret");
      String secret;
      if (secretField == null) {
        byte[] random = new byte[24];
        new java.security.SecureRandom().nextBytes(random);
        secret = "whsec_" + java.util.HexFormat.of().formatHex(random);
      } else if (secretField instanceof String s && s.length() >= 16 && s.length() <= 100) {
        secret = s;
      } else {
        throw new Problem("invalid-webhook", 422, "Invalid webhook", "secret must be a string of 16 to 100 characters");
      }
      io.anneal.webhook.WebhookStore.Webhook w = new io.anneal.webhook.WebhookStore.Webhook(Ids.next("wh_"), t.id(), url,
          events, secret, System.currentTimeMillis(), lowBalance);
      return Future.fromCompletionStage(store.writer().submit(c -> {
        if (io.anneal.webhook.WebhookStore.active(c, t.id()).size() >= MAX_WEBHOOKS) return false;
        io.anneal.webhook.WebhookStore.insert(c, w);
        return true;
      }), vertx.getOrCreateContext()).compose(ok -> ok ? Future.succeededFuture(w)
          : Future.failedFuture(new Problem("too-many-webhooks", 409, "Too many webhooks",
              "a tenant may hold " + MAX_WEBHOOKS + " webhooks; delete one first")));
    }).onSuccess(w -> {
      vertx.eventBus().publish(io.anneal.webhook.WebhookVerticle.CHANGED, new JsonObject().put("tenantId", w.tenantId()));
      rc.response().setStatusCode(201).putHeader("Location", "/api/v1/webhooks/" + w.id())
          .putHeader("content-type", "application/json")
          .end(new JsonObject(new java.util.LinkedHashMap<>(w.toApi())).put("secret", w.secret()).encode());
    }).onFailure(e -> fail(rc, e));
  }

  private static String webhookUrl(Object v) {
    if (!(v instanceof String s) || s.isBlank()) {
      throw new Problem("invalid-webhook", 422, "Invalid webhook", "url is required, e.g. \"https://example.com/hooks/anneal\"");
    }
    java.net.URI u;
    try {
      u = new java.net.URI(s.trim());
    } catch (java.net.URISyntaxException e) {
      throw new Problem("invalid-webhook", 422, "Invalid webhook", "url is not a URL: " + e.getMessage());
    }
    if (!("http".equals(u.getScheme()) || "https".equals(u.getScheme())) || u.getHost() == null || s.length() > 2000
        || u.getUserInfo() != null) {
      throw new Problem("invalid-webhook", 422, "Invalid webhook",
          "url must be an absolute http or https URL with a host, no credentials, at most 2000 characters");
    }
    return u.toString();
  }

  /** A provider account's webhook events: a non-empty list of payout.executed and payout.cancelled. */
  private static Set<String> providerWebhookEvents(Object v) {
    Set<String> out = new java.util.LinkedHashSet<>();
    if (v instanceof JsonArray a && !a.isEmpty()) {
      for (Object o : a) {
        if (!(o instanceof String s) || !io.anneal.webhook.WebhookStore.PROVIDER_EVENT_TYPES.contains(s)) {
          out = null;
          break;
        }
        out.add(s);
      }
    } else {
      out = null;
    }
    if (out == null) {
      throw new Problem("invalid-webhook", 422, "Invalid webhook", "a provider account's webhook asks for"
          + " [\"payout.executed\"], [\"payout.cancelled\"] or both: its nodes' payouts, decided at redemption epochs");
    }
    return out;
  }

  private static Set<String> webhookEvents(Object v) {
    if (v == null) return Set.of("*");
    if (!(v instanceof JsonArray a) || a.isEmpty()) {
      throw new Problem("invalid-webhook", 422, "Invalid webhook", "events must be a non-empty list, e.g. [\"job.settled\"],"
          + " [\"*\"] (every job event), [\"epoch.closed\"], [\"deposit.executed\", \"deposit.cancelled\"] or"
          + " [\"balance.low\"] (with lowBalanceAct)");
    }
    Set<String> out = new java.util.LinkedHashSet<>();
    for (Object o : a) {
      if (!(o instanceof String s) || !(s.equals("*") || io.anneal.webhook.WebhookStore.EVENT_TYPES.contains(s))) {
        throw new Problem("invalid-webhook", 422, "Invalid webhook", "unknown event " + o + "; events are * or "
            + new java.util.TreeSet<>(io.anneal.webhook.WebhookStore.EVENT_TYPES));
      }
      out.add(s);
    }
    return out;
  }

  private void listWebhooks(RoutingContext rc) {
    webhookOwner(rc).compose(t -> Future.fromCompletionStage(store.read(c -> io.anneal.webhook.WebhookStore.active(c, t.id())),
        vertx.getOrCreateContext())).onSuccess(list -> {
          JsonArray a = new JsonArray();
          list.forEach(w -> a.add(new JsonObject(new java.util.LinkedHashMap<>(w.toApi()))));
          rc.json(new JsonObject().put("webhooks", a));
        }).onFailure(e -> fail(rc, e));
  }

  private void deleteWebhook(RoutingContext rc) {
    String id = rc.pathParam("id");
    webhookOwner(rc).compose(t -> Future.fromCompletionStage(store.writer().submit(c -> io.anneal.webhook.WebhookStore.deactivate(c,
        t.id(), id)), vertx.getOrCreateContext()).compose(ok -> ok ? Future.succeededFuture(t)
            : Future.failedFuture(Problem.notFound("no webhook " + id))))
        .onSuccess(t -> {
          vertx.eventBus().publish(io.anneal.webhook.WebhookVerticle.CHANGED, new JsonObject().put("tenantId", t.id()));
          rc.response().setStatusCode(204).end();
        }).onFailure(e -> fail(rc, e));
  }

  /** The delivery log of one of the tenant's webhooks, newest first (at most 200). */
  private void webhookDeliveries(RoutingContext rc) {
    String id = rc.pathParam("id");
    webhookOwner(rc).compose(t -> Future.fromCompletionStage(store.read(c -> io.anneal.webhook.WebhookStore.owns(c, t.id(), id)
        ? java.util.Optional.of(io.anneal.webhook.WebhookStore.deliveries(c, id, 200)) : java.util.Optional.<List<Map<String, Object>>>empty()),
        vertx.getOrCreateContext())).onSuccess(list -> {
          if (list.isEmpty()) {
            fail(rc, Problem.notFound("no webhook " + id));
            return;
          }
          JsonArray a = new JsonArray();
          list.get().forEach(m -> a.add(new JsonObject(new java.util.LinkedHashMap<>(m))));
          rc.json(new JsonObject().put("webhookId", id).put("deliveries", a));
        }).onFailure(e -> fail(rc, e));
  }

  private void forwardEvent(JsonObject ev) {
    Set<WsSession> set = sessionsByTenant.get(ev.getString("tenantId"));
    if (set == null || set.isEmpty()) return;
    JsonObject out = ev.copy();
    out.remove("tenantId");
    String text = out.encode();
    for (WsSession s : set) s.maybeSend(ev.getString("jobId"), text);
  }
}
