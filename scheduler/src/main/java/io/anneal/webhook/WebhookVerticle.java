package io.anneal.webhook;

import io.anneal.bus.Addresses;
import io.anneal.store.JobStore;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Logger;

/**
 * Delivers job events (and, to webhooks that ask for them, each closed accounting epoch's totals and
 * Merkle root, and the tenant's ACT falling below a threshold) to tenants' webhooks. Each state change of a job that a webhook subscribed to
 * becomes a delivery row written in the same transaction as the change ({@link WebhookStore#enqueueFor}
 * as the job store's transition listener), so a crash cannot lose it; a poller sends due
 * deliveries with the non-blocking HTTP client, signed ({@link WebhookSigner}), and records each
 * attempt: 2xx is delivered; anything else (status, timeout, refused connection) is retried after
 * 1, 2, 4 … s (at most {@link #MAX_BACKOFF_MS}) until {@link #MAX_ATTEMPTS}, then failed. Rows
 * survive restarts, so a delivery pending at shutdown is sent after the next start (at least once;
 * receivers de-duplicate by the event id). Deliveries are not ordered across retries: the body
 * carries the event's time.
 */
public final class WebhookVerticle extends VerticleBase {
  /** publish: a tenant's webhooks changed, {@code {tenantId}}: the verticle reloads them. */
  public static final String CHANGED = "anneal.webhooks.changed";
  static final int MAX_ATTEMPTS = 10;
  static final long MAX_BACKOFF_MS = 10 * 60_000L;
  private static final Logger LOG = Logger.getLogger(WebhookVerticle.class.getName());
  private static final int POLL_MS = 500;
  private static final int BATCH = 64;
  /** How often closed epochs are looked for, for webhooks that asked for them. */
  private static final int EPOCHS_MS = 1_000;
  /** How often balances are compared with the thresholds of balance.low webhooks. */
  private static final int BALANCES_MS = 2_000;
  /** The kinds of owed deliveries being written now (see {@link #enqueueOwed}). */
  private final Set<String> enqueuing = new HashSet<>();

  private final JobStore store;
  private final Counter delivered;
  private final Counter retried;
  private final Counter failed;
  /** Active webhooks by tenant; read by the store's writer thread when it writes job state changes. */
  private volatile Map<String, List<WebhookStore.Webhook>> byTenant = Map.of();
  private boolean pollSoon;
  private final Set<Long> inFlight = new HashSet<>();
  private boolean polling;
  private HttpClient client;

  public WebhookVerticle(JobStore store, MeterRegistry registry) {
    this.store = store;
    this.delivered = Counter.builder("anneal.webhooks.deliveries").tag("outcome", "delivered").register(registry);
    this.retried = Counter.builder("anneal.webhooks.deliveries").tag("outcome", "retry").register(registry);
    this.failed = Counter.builder("anneal.webhooks.deliveries").tag("outcome", "failed").register(registry);
  }

  /** Wait before attempt {@code attempts + 1}, after {@code attempts} failed ones. */
  static long backoffMs(int attempts) {
    return Math.min(MAX_BACKOFF_MS, 1000L << Math.min(attempts - 1, 20));
  }

  @Override
  public Future<?> start() {
    client = vertx.createHttpClient(new HttpClientOptions().setConnectTimeout(5_000).setKeepAlive(true),
        new io.vertx.core.http.PoolOptions().setHttp1MaxSize(16));
    store.onTransitions(new JobStore.TransitionListener() {
      @Override
      public boolean active() {
        return !byTenant.isEmpty();
      }

      @Override
      public void written(java.sql.Connection c, List<JobStore.Transition> transitions) throws java.sql.SQLException {
        WebhookStore.enqueueFor(c, byTenant, transitions);
      }
    });
    // deliveries are written with the state changes; a job event means some may be due now
    vertx.eventBus().<JsonObject>consumer(Addresses.JOB_EVENTS, m -> pollSoon());
    vertx.eventBus().<JsonObject>consumer(CHANGED, m -> reload());
    vertx.setPeriodic(POLL_MS, id -> poll());
    vertx.setPeriodic(EPOCHS_MS, id -> enqueueClosedEpochs());
    vertx.setPeriodic(BALANCES_MS, id -> enqueueLowBalances());
    vertx.setPeriodic(EPOCHS_MS, id -> enqueueDeposits());
    vertx.setPeriodic(EPOCHS_MS, id -> enqueuePayouts());
    return reload();
  }

  private Future<Void> reload() {
    return Future.fromCompletionStage(store.read(c -> WebhookStore.active(c, null)), context).map(all -> {
      Map<String, List<WebhookStore.Webhook>> m = new HashMap<>();
      for (WebhookStore.Webhook w : all) m.computeIfAbsent(w.tenantId(), k -> new ArrayList<>()).add(w);
      byTenant = m;
      return null;
    });
  }

  /**
   * The deliveries owed to webhooks that asked for {@code what} (those {@code wants} matches), then a
   * poll: a read first says whether any are owed, and only then the store's writer (and on H2 its synced
   * checkpoint) writes them with their cursors or marks in one transaction. One at a time per kind.
   */
  private void enqueueOwed(String what, java.util.function.Predicate<WebhookStore.Webhook> wants,
      io.anneal.billing.sql.GroupCommitWriter.Op<Boolean> owed, io.anneal.billing.sql.GroupCommitWriter.Op<Integer> write) {
    boolean wanted = byTenant.values().stream().flatMap(List::stream).anyMatch(wants);
    if (!wanted || !enqueuing.add(what)) return;
    Future.fromCompletionStage(store.read(owed).thenCompose(o -> o ? store.writer().submit(write)
        : java.util.concurrent.CompletableFuture.completedFuture(0)), context).onComplete(ar -> {
          enqueuing.remove(what);
          if (ar.failed()) LOG.warning("could not write " + what + " deliveries (tried again soon): " + ar.cause().getMessage());
          else if (ar.result() > 0) pollSoon();
        });
  }

  /** {@code epoch.closed}: the epochs closed since each subscribed webhook's cursor. */
  private void enqueueClosedEpochs() {
    enqueueOwed(WebhookStore.EPOCH_CLOSED, w -> w.wants(WebhookStore.EPOCH_CLOSED), WebhookStore::epochsOwed,
        c -> WebhookStore.enqueueClosedEpochs(c, System.currentTimeMillis(), 100));
  }

  /** {@code balance.low} (ADR 28): tenants whose ACT available fell below a webhook's threshold; re-arms those back above it. */
  private void enqueueLowBalances() {
    enqueueOwed(WebhookStore.BALANCE_LOW, w -> w.wants(WebhookStore.BALANCE_LOW), WebhookStore::lowBalancesChanged,
        c -> WebhookStore.enqueueLowBalances(c, System.currentTimeMillis()));
  }

  /** {@code deposit.executed} / {@code deposit.cancelled}: deposits decided since each subscribed webhook's cursor. */
  private void enqueueDeposits() {
    enqueueOwed("deposit", w -> w.wants(WebhookStore.DEPOSIT_EXECUTED) || w.wants(WebhookStore.DEPOSIT_CANCELLED),
        WebhookStore::depositsOwed, c -> WebhookStore.enqueueDeposits(c, System.currentTimeMillis(), 100));
  }

  /** {@code payout.executed} / {@code payout.cancelled} (ADR 32): payouts of provider accounts' nodes decided since each cursor. */
  private void enqueuePayouts() {
    enqueueOwed("payout", w -> w.wants(WebhookStore.PAYOUT_EXECUTED) || w.wants(WebhookStore.PAYOUT_CANCELLED),
        WebhookStore::payoutsOwed, c -> WebhookStore.enqueuePayouts(c, System.currentTimeMillis(), 100));
  }

  /** Polls within 50 ms (at most one poll pending), so a burst of events costs one query. */
  private void pollSoon() {
    if (pollSoon || byTenant.isEmpty()) return;
    pollSoon = true;
    vertx.setTimer(50, id -> {
      pollSoon = false;
      poll();
    });
  }

  private void poll() {
    // no active webhook, nothing to send: deleting a webhook cancels its pending deliveries
    if (polling || byTenant.isEmpty()) return;
    polling = true;
    // sent only once durable: what was read had committed, and a crash must not take back what was told
    Future.fromCompletionStage(store.read(c -> WebhookStore.due(c, System.currentTimeMillis(), BATCH))
            .thenCompose(due -> store.database().durable().thenApply(v -> due)), context)
        .onComplete(ar -> {
          polling = false;
          if (ar.failed()) {
            LOG.warning("webhook poll failed: " + ar.cause().getMessage());
            return;
          }
          for (WebhookStore.Due d : ar.result()) {
            if (inFlight.add(d.id())) send(d);
          }
        });
  }

  private void send(WebhookStore.Due d) {
    long sentAt = System.currentTimeMillis();
    RequestOptions opts = new RequestOptions().setMethod(HttpMethod.POST).setAbsoluteURI(d.url()).setIdleTimeout(10_000);
    client.request(opts)
        .compose(req -> req.putHeader("content-type", "application/json")
            .putHeader("user-agent", "Anneal-Webhooks/1")
            .putHeader("Anneal-Event", d.type())
            .putHeader("Anneal-Event-Id", d.eventId())
            .putHeader("Anneal-Delivery", Long.toString(d.id()))
            .putHeader(WebhookSigner.HEADER, WebhookSigner.header(d.secret(), sentAt / 1000, d.body()))
            .send(Buffer.buffer(d.body())))
        .compose(resp -> resp.body().map(b -> resp.statusCode()))
        .onComplete(ar -> {
          int attempts = d.attempts() + 1;
          boolean ok = ar.succeeded() && ar.result() / 100 == 2;
          Integer status = ar.succeeded() ? ar.result() : null;
          String error = ok ? null : ar.succeeded() ? "HTTP " + ar.result() : String.valueOf(ar.cause().getMessage());
          long next = ok ? 0 : attempts >= MAX_ATTEMPTS ? -1 : System.currentTimeMillis() + backoffMs(attempts);
          (ok ? delivered : next < 0 ? failed : retried).increment();
          store.writer().submit(c -> {
            WebhookStore.attempted(c, d.id(), ok, status, error, System.currentTimeMillis(), next);
            return null;
          }).whenComplete((v, e) -> context.runOnContext(x -> inFlight.remove(d.id())));
        });
  }

  @Override
  public Future<?> stop() {
    return client == null ? Future.succeededFuture() : client.close();
  }
}
