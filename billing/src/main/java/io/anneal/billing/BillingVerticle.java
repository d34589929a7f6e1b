package io.anneal.billing;

import io.anneal.billing.ledger.LedgerRefusal;
import io.anneal.billing.ledger.LedgerStore;
import io.anneal.billing.ledger.Settlement;
import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.receipt.NodeKeys;
import io.anneal.billing.receipt.ReceiptVerifier;
import io.anneal.billing.receipt.SignedReceipt;
import io.anneal.billing.sql.GroupCommitWriter;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.Message;
import io.vertx.core.json.JsonObject;
import java.security.PublicKey;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

/**
 * Settles receipts from the bus exactly once: verifies the node's signature over the batch root,
 * then charges, pays and releases in one ledger transaction keyed by the receipt id. A second
 * delivery of the same receipt answers with the first settlement.
 */
public final class BillingVerticle extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(BillingVerticle.class.getName());

  private final GroupCommitWriter writer;
  /** Where receipts settle and refusals are kept (the ledger port); epochs, prices and payouts use the store's writer. */
  private LedgerStore ledger;
  private final io.anneal.billing.pricing.PriceBook prices;
  /** bme-spec 16.3, or null when the bootstrap fund is off. */
  private Bootstrap bootstrap;

  /** The bootstrap fund's rules and each GPU class's floor revenue (uact per GPU-hour). */
  public record Bootstrap(io.anneal.billing.pricing.BootstrapFund fund, Map<String, Long> floorUactPerGpuHour) {}

  private boolean adjustPrices = true;

  /** Whether pricing windows move class prices (bme-spec 16.2; on by default). */
  public BillingVerticle withPriceAdjust(boolean on) {
    this.adjustPrices = on;
    return this;
  }

  /**
   * Settles through this ledger adapter instead of the store's writer (before deployment): settlement
   * lanes ({@link JdbcLedgerStore}) or the Vert.x SQL clients ({@link io.anneal.billing.ledger.SqlClientLedgerStore}).
   * Its owner closes it.
   */
  public BillingVerticle withLedger(LedgerStore l) {
    this.ledger = l;
    return this;
  }

  /** Turns the bootstrap fund on (before deployment). */
  public BillingVerticle withBootstrap(Bootstrap b) {
    this.bootstrap = b;
    return this;
  }
  private final Map<String, PublicKey> nodeKeys = new ConcurrentHashMap<>();
  private final Counter settled;
  private final Counter duplicates;
  private final Counter badSignatures;
  private final Counter refused;
  private final Counter usageCapped;

  private final long epochSeconds;

  public BillingVerticle(GroupCommitWriter writer, Map<String, Long> classPrices, MeterRegistry registry) {
    this(writer, classPrices, registry, 3600);
  }

  /** @param epochSeconds length of an accounting epoch; ended epochs are closed (totals, Merkle root) */
  public BillingVerticle(GroupCommitWriter writer, Map<String, Long> classPrices, MeterRegistry registry, long epochSeconds) {
    this(writer, io.anneal.billing.pricing.PriceBook.withDefaults(classPrices), registry, epochSeconds);
  }

  /**
   * @param prices the class prices: a run is charged at its class's price in force when it started
   *     (capped by its escrow's quote); pricing windows reported on {@link BillingAddresses#CLASS_UTILIZATION}
   *     move them (bme-spec 16.2)
   */
  public BillingVerticle(GroupCommitWriter writer, io.anneal.billing.pricing.PriceBook prices, MeterRegistry registry,
      long epochSeconds) {
    this.epochSeconds = epochSeconds;
    this.writer = writer;
    this.ledger = new JdbcLedgerStore(writer, SettlementLanes.shared(writer), prices::priceAt, System::currentTimeMillis,
        epochSeconds);
    this.prices = prices;
    this.settled = Counter.builder("anneal.billing.settlements").tag("result", "settled").register(registry);
    this.duplicates = Counter.builder("anneal.billing.settlements").tag("result", "duplicate").register(registry);
    this.badSignatures = Counter.builder("anneal.billing.settlements").tag("result", "bad-signature").register(registry);
    this.refused = Counter.builder("anneal.billing.settlements").tag("result", "refused").register(registry);
    this.usageCapped = Counter.builder("anneal.billing.usage.capped")
        .description("receipts billed for less GPU time than they claimed: more than the job's GPUs had since placement")
        .register(registry);
  }

  @Override
  public Future<?> start() {
    vertx.eventBus().<JsonObject>consumer(BillingAddresses.RECEIPT, this::onReceipt);
    vertx.eventBus().<JsonObject>consumer(BillingAddresses.CLASS_UTILIZATION, m -> closePricingWindow(m.body()));
    long every = Math.max(250, Math.min(10_000, epochSeconds * 1000 / 4));
    vertx.setPeriodic(every, id -> {
      // the last close has not ended (a large epoch, or a store out of reach): no pile of them
      if (!closing.compareAndSet(false, true)) return;
      ledger.closeEpochs(System.currentTimeMillis())
          .onComplete(ar -> closing.set(false)) // on the store's thread (the JDBC adapter) or the lanes' context
          .onSuccess(closed -> closed.forEach(e -> LOG.info("closed epoch " + e.epoch() + ": " + e.receipts()
              + " receipt(s), " + e.chargedUact() + " uact charged, Merkle root " + e.merkleRoot())))
          .onFailure(e -> LOG.warning("could not close epochs (tried again in " + every + " ms): " + e));
    });
    return Future.succeededFuture();
  }

  /** An epoch close is under way. */
  private final java.util.concurrent.atomic.AtomicBoolean closing = new java.util.concurrent.atomic.AtomicBoolean();

  /** bme-spec 16.2: each class's price moves by its utilization in the window; changes are persisted. */
  private void closePricingWindow(JsonObject window) {
    Map<String, long[]> usage = new java.util.LinkedHashMap<>();
    JsonObject classes = window.getJsonObject("classes", new JsonObject());
    for (String cls : classes.fieldNames()) {
      JsonObject u = classes.getJsonObject(cls);
      usage.put(cls, new long[] {u.getLong("busyGpuSeconds", 0L), u.getLong("availableGpuSeconds", 0L)});
    }
    long endMs = window.getLong("endMs", System.currentTimeMillis());
    long startMs = window.getLong("startMs", endMs);
    List<io.anneal.billing.pricing.PriceBook.Change> changes = adjustPrices ? prices.closeWindow(usage, endMs) : List.of();
    List<io.anneal.billing.ledger.BootstrapPayouts.NodeWindow> nodes = new java.util.ArrayList<>();
    JsonObject nj = window.getJsonObject("nodes", new JsonObject());
    for (String n : nj.fieldNames()) {
      JsonObject o = nj.getJsonObject(n);
      nodes.add(new io.anneal.billing.ledger.BootstrapPayouts.NodeWindow(n, o.getInteger("gpus"), o.getString("gpuClass"),
          io.anneal.billing.bme.Dec.parse(String.format(java.util.Locale.ROOT, "%.6f", o.getDouble("online", 0.0)))));
    }
    long busy = usage.values().stream().mapToLong(u -> u[0]).sum();
    long available = usage.values().stream().mapToLong(u -> u[1]).sum();
    io.anneal.billing.bme.Dec u = available == 0 ? io.anneal.billing.bme.Dec.ZERO
        : io.anneal.billing.bme.Dec.fromInt(Math.min(busy, available)).quo(io.anneal.billing.bme.Dec.fromInt(available));
    Bootstrap b = bootstrap;
    if (changes.isEmpty() && b == null) return;
    writer.<io.anneal.billing.ledger.BootstrapPayouts.Result>submitAlone(c -> {
      if (b != null) SqlLedger.settlementBarrier(c); // first: the window's settlements, then its payouts
      SqlLedger.recordPrices(c, changes);
      return b == null ? null
          : io.anneal.billing.ledger.BootstrapPayouts.closeWindow(c, b.fund(), nodes, b.floorUactPerGpuHour(), startMs, endMs, u);
    }).whenComplete((r, e) -> {
      if (e != null) {
        LOG.warning("could not close the pricing window: " + e.getMessage());
        return;
      }
      changes.forEach(ch -> LOG.info("price of " + ch.gpuClass() + ": " + ch.perGpuHour() + " uact/GPU-hour (utilization "
          + ch.utilization() + ")"));
      if (r != null && !r.payouts().isEmpty()) {
        LOG.fine("bootstrap fund paid " + r.payouts().size() + " provider(s); fund holds " + r.fundUact() + " uact");
      }
    });
  }

  private void onReceipt(Message<JsonObject> msg) {
    SignedReceipt sr;
    try {
      sr = ReceiptJson.decode(msg.body());
    } catch (IllegalArgumentException e) {
      refused.increment();
      msg.fail(400, e.getMessage());
      return;
    }
    String nodeId = sr.receipt().nodeId();
    keyOf(nodeId)
        .compose(key -> key.isEmpty() ? Future.succeededFuture(key)
            // an Ed25519 check costs about a millisecond: off the event loop, and once per signed batch
            : vertx.executeBlocking(() -> verified(sr, key.get()) ? key : Optional.<PublicKey>empty()))
        .compose(key -> {
      if (key.isEmpty()) {
        boolean known = nodeKeys.containsKey(nodeId);
        String why = known ? "bad signature from node " + nodeId : "unknown node " + nodeId;
        badSignatures.increment();
        LOG.warning("refused receipt " + sr.receipt().receiptId() + ": " + why);
        return here(ledger.recordRefused(sr.receipt().receiptId(), nodeId, why).map(v -> Settlement.refused(
            sr.receipt().receiptId(), sr.receipt().jobId(), known ? LedgerRefusal.BAD_SIGNATURE : LedgerRefusal.UNKNOWN_NODE)));
      }
      return here(ledger.settle(sr));
    }).onSuccess(s -> {
      if (s.settled()) {
        (s.duplicate() ? duplicates : settled).increment();
        if (s.usageCapped() && !s.duplicate()) {
          usageCapped.increment();
          LOG.warning("receipt " + s.receiptId() + " from node " + nodeId + " claims " + sr.receipt().deviceNanos()
              + " ns of GPU time, more than the job's GPUs had since it was placed: billed " + s.billedGpuNanos() + " ns");
        }
      } else if (s.refusal() != LedgerRefusal.BAD_SIGNATURE && s.refusal() != LedgerRefusal.UNKNOWN_NODE) {
        refused.increment();
      }
      if (s.refusal() == LedgerRefusal.NOT_PLACED_ON_NODE) {
        // a node billing a job it was not given: kept for audit, as a bad signature is
        String why = "job " + sr.receipt().jobId() + " was not placed on node " + nodeId;
        LOG.warning("refused receipt " + sr.receipt().receiptId() + ": " + why);
        ledger.recordRefused(sr.receipt().receiptId(), nodeId, why)
            .onFailure(e -> LOG.warning("could not keep refused receipt " + sr.receipt().receiptId() + ": " + e));
      }
      msg.reply(new JsonObject()
          .put("receiptId", s.receiptId())
          .put("jobId", s.jobId())
          .put("settled", s.settled())
          .put("duplicate", s.duplicate())
          .put("chargeUact", s.chargeUact())
          .put("refundUact", s.refundUact())
          .put("paidUakt", s.paidUakt())
          .put("txId", s.txId())
          .put("billedGpuNanos", s.billedGpuNanos())
          .put("refusal", s.refusal() == null ? null : s.refusal().name()));
    }).onFailure(e -> msg.fail(500, "settlement failed: " + e.getMessage()));
  }

  /** Batch roots whose signature was already checked, per node; a receipt then needs only its path. */
  private final Map<String, Boolean> verifiedRoots = java.util.Collections.synchronizedMap(
      new java.util.LinkedHashMap<>(1024, 0.75f, true) {
        private static final long serialVersionUID = 1L;

        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Boolean> eldest) {
          return size() > 10_000;
        }
      });

  private boolean verified(SignedReceipt sr, PublicKey key) {
    if (!io.anneal.billing.merkle.MerkleTree.verify(sr.leafHash(), sr.proof(), sr.batchRoot())) return false;
    String rootKey = sr.receipt().nodeId() + "/" + java.util.HexFormat.of().formatHex(sr.batchRoot()) + "/"
        + java.util.Base64.getEncoder().encodeToString(sr.signature());
    if (verifiedRoots.containsKey(rootKey)) return true;
    boolean ok = ReceiptVerifier.verify(sr, key);
    if (ok) verifiedRoots.put(rootKey, Boolean.TRUE);
    return ok;
  }

  private Future<Optional<PublicKey>> keyOf(String nodeId) {
    PublicKey cached = nodeKeys.get(nodeId);
    if (cached != null) return Future.succeededFuture(Optional.of(cached));
    return here(ledger.nodeKey(nodeId).map(k -> {
      Optional<PublicKey> key = k.map(NodeKeys::decodePublic);
      key.ifPresent(pk -> nodeKeys.put(nodeId, pk));
      return key;
    }));
  }

  /** The outcome of a ledger call, back on this verticle's context (an adapter may complete it on its own thread). */
  private <T> Future<T> here(Future<T> f) {
    return Future.fromCompletionStage(f.toCompletionStage(), context);
  }
}
