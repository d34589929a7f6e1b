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
  private final Map<String, KnownKeys> nodeKeys = new ConcurrentHashMap<>();
  /** When node keys were read, and how old they are (milliseconds). */
  private java.util.function.LongSupplier keysClock = System::currentTimeMillis;

  /** The clock the node keys' age is measured by (before deployment; tests move it instead of waiting). */
  BillingVerticle withKeysClock(java.util.function.LongSupplier clock) {
    this.keysClock = clock;
    return this;
  }
  private final Counter settled;
  private final Counter duplicates;
  private final Counter badSignatures;
  private final Counter revokedKeySignatures;
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
    // apart from bad signatures: after a revoking rotation the receipts in flight are expected here once (ADR 18)
    this.revokedKeySignatures = Counter.builder("anneal.billing.settlements").tag("result", "revoked-key").register(registry);
    this.refused = Counter.builder("anneal.billing.settlements").tag("result", "refused").register(registry);
    this.usageCapped = Counter.builder("anneal.billing.usage.capped")
        .description("receipts billed for less GPU time than they claimed: more than the job's GPUs had since placement")
        .register(registry);
  }

  @Override
  public Future<?> start() {
    // the prices a run is charged at: those stored, which an instance that held billing before may have moved
    // since this one started (cluster mode, ADR 20)
    return Future.fromCompletionStage(catchUpPrices(), context).compose(v -> listen());
  }

  /** Adds to the book the price changes stored that it does not hold yet. */
  private java.util.concurrent.CompletableFuture<Void> catchUpPrices() {
    return writer.submitAlone(c -> SqlLedger.loadPricesAfter(c, prices)).thenAccept(prices::restore);
  }

  private Future<?> listen() {
    vertx.eventBus().<JsonObject>consumer(BillingAddresses.RECEIPT, this::onReceipt);
    // answered once the window is stored (or had nothing to store): the scheduler sends it again until then
    vertx.eventBus().<JsonObject>consumer(BillingAddresses.CLASS_UTILIZATION, m -> closePricingWindow(m.body())
        .whenComplete((ok, e) -> context.runOnContext(x -> {
          if (Boolean.TRUE.equals(ok)) {
            m.reply(new JsonObject().put("endMs", m.body().getLong("endMs")));
          } else {
            m.fail(503, "pricing window not stored; send it again");
          }
        })));
    vertx.eventBus().<JsonObject>consumer(BillingAddresses.NODE_KEYS_CHANGED, m -> forgetKeys(m.body().getString("nodeId")));
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

  /**
   * bme-spec 16.2: each class's price moves by its utilization in the window; changes are persisted. Completes
   * with whether the window is done with: stored, or nothing to store (false: the store refused it).
   */
  private java.util.concurrent.CompletableFuture<Boolean> closePricingWindow(JsonObject window) {
    Map<String, long[]> usage = new java.util.LinkedHashMap<>();
    JsonObject classes = window.getJsonObject("classes", new JsonObject());
    for (String cls : classes.fieldNames()) {
      JsonObject u = classes.getJsonObject(cls);
      usage.put(cls, new long[] {u.getLong("busyGpuSeconds", 0L), u.getLong("availableGpuSeconds", 0L)});
    }
    long endMs = window.getLong("endMs", System.currentTimeMillis());
    long startMs = window.getLong("startMs", endMs);
    List<io.anneal.billing.ledger.BootstrapPayouts.NodeWindow> nodes = new java.util.ArrayList<>();
    JsonObject nj = window.getJsonObject("nodes", new JsonObject());
    for (String n : nj.fieldNames()) {
      JsonObject o = nj.getJsonObject(n);
      nodes.add(new io.anneal.billing.ledger.BootstrapPayouts.NodeWindow(n, o.getInteger("gpus"), o.getString("gpuClass"),
          io.anneal.billing.bme.Dec.parse(String.format(java.util.Locale.ROOT, "%.6f", o.getDouble("online", 0.0)))));
    }
    if (!adjustPrices && bootstrap == null) return java.util.concurrent.CompletableFuture.completedFuture(true);
    // a window its scheduler ended early (a stop) is too short to move a price by (a step is per window)
    boolean movePrices = adjustPrices && !window.getBoolean("partial", false);
    long busy = usage.values().stream().mapToLong(u -> u[0]).sum();
    long available = usage.values().stream().mapToLong(u -> u[1]).sum();
    io.anneal.billing.bme.Dec u = available == 0 ? io.anneal.billing.bme.Dec.ZERO
        : io.anneal.billing.bme.Dec.fromInt(Math.min(busy, available)).quo(io.anneal.billing.bme.Dec.fromInt(available));
    Bootstrap b = bootstrap;
    // one window after the other: each works out its prices from those the one before stored
    java.util.concurrent.CompletableFuture<Boolean> done =
        pricing.handle((x, e) -> null).thenCompose(x -> closeWindow(usage, nodes, u, startMs, endMs, b, movePrices));
    pricing = done;
    return done;
  }

  /** The pricing windows under way, one after the other (touched on the event loop only). */
  private java.util.concurrent.CompletableFuture<?> pricing = java.util.concurrent.CompletableFuture.completedFuture(null);

  private record WindowClosed(boolean pricesRecorded, io.anneal.billing.ledger.BootstrapPayouts.Result bootstrap) {}

  /**
   * Stores a window's price changes and bootstrap payouts in one transaction, then applies the changes to
   * the book and tells every instance. Prices are applied only once stored, so no price is charged or
   * quoted that the store does not hold; a window whose prices another instance moved first (a billing
   * role changing hands) moves none, and the book reads the stored ones instead.
   */
  private java.util.concurrent.CompletableFuture<Boolean> closeWindow(Map<String, long[]> usage,
      List<io.anneal.billing.ledger.BootstrapPayouts.NodeWindow> nodes, io.anneal.billing.bme.Dec u, long startMs, long endMs,
      Bootstrap b, boolean movePrices) {
    Map<String, Long> held = prices.latestFromMs();
    List<io.anneal.billing.pricing.PriceBook.Change> changes = movePrices ? prices.nextWindow(usage, endMs) : List.of();
    if (changes.isEmpty() && b == null) return java.util.concurrent.CompletableFuture.completedFuture(true);
    return writer.<WindowClosed>submitAlone(c -> {
      // first: the window's settlements, then its payouts; and one window of any instance at a time
      SqlLedger.settlementBarrier(c);
      boolean recorded = SqlLedger.recordPrices(c, changes, held);
      return new WindowClosed(recorded, b == null ? null
          : io.anneal.billing.ledger.BootstrapPayouts.closeWindow(c, b.fund(), nodes, b.floorUactPerGpuHour(), startMs, endMs, u,
              epochSeconds));
    }).thenCompose(w -> {
      if (!w.pricesRecorded()) {
        LOG.info("pricing window ending at " + endMs + " ms moves no price: the stored prices moved since this instance"
            + " read them (another instance closed a window); reading them again");
        return catchUpPrices().thenApply(x -> w);
      }
      if (!changes.isEmpty()) {
        prices.restore(changes);
        vertx.eventBus().publish(BillingAddresses.PRICES_CHANGED, PriceChanges.encode(changes));
        changes.forEach(ch -> LOG.info("price of " + ch.gpuClass() + ": " + ch.perGpuHour() + " uact/GPU-hour (utilization "
            + ch.utilization() + ")"));
      }
      return java.util.concurrent.CompletableFuture.completedFuture(w);
    }).handle((w, e) -> {
      if (e != null) {
        LOG.warning("could not close the pricing window ending at " + endMs + " ms (the scheduler sends it again): "
            + e.getMessage());
        return false;
      } else if (w.bootstrap() != null && w.bootstrap().covered()) {
        LOG.info("bootstrap window " + startMs + ".." + endMs + " ms pays nothing: earlier windows paid for all of it"
            + " (two schedulers' windows overlap across a takeover)");
      } else if (w.bootstrap() != null && !w.bootstrap().payouts().isEmpty()) {
        LOG.fine("bootstrap fund paid " + w.bootstrap().payouts().size() + " provider(s); fund holds "
            + w.bootstrap().fundUact() + " uact");
      }
      return true;
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
    boolean[] checkedHere = {false}; // refused by the signature check here, not by the ledger's own (revoked keys)
    checkSignature(sr)
        // refused on keys read a while ago: read them again first (a key rotated by another process
        // sharing the ledger is not told here, ADR 18)
        .compose(problem -> problem == null || !forgetIfOlderThan(nodeId, KEYS_RECHECK_MS) ? Future.succeededFuture(problem)
            : checkSignature(sr))
        .compose(problem -> {
      if (problem != null) {
        checkedHere[0] = true;
        String why = problem.why();
        (problem.revokedKey() ? revokedKeySignatures : badSignatures).increment();
        LOG.warning("refused receipt " + sr.receipt().receiptId() + ": " + why);
        return here(ledger.recordRefused(sr.receipt().receiptId(), nodeId, why).map(v -> Settlement.refused(
            sr.receipt().receiptId(), sr.receipt().jobId(),
            problem.unknownNode() ? LedgerRefusal.UNKNOWN_NODE : LedgerRefusal.BAD_SIGNATURE)));
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
      if (s.refusal() == LedgerRefusal.BAD_SIGNATURE && !checkedHere[0]) {
        // the key was revoked after the check here and before the settlement (ADR 18): the ledger refused it
        revokedKeySignatures.increment();
        forgetKeys(nodeId);
        String why = "bad signature from node " + nodeId + ": signed with a key revoked before it was settled";
        LOG.warning("refused receipt " + sr.receipt().receiptId() + ": " + why);
        ledger.recordRefused(sr.receipt().receiptId(), nodeId, why)
            .onFailure(e -> LOG.warning("could not keep refused receipt " + sr.receipt().receiptId() + ": " + e));
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

  /**
   * Batch roots whose signature was already checked, per node, with the key that signed each; a receipt
   * then needs only its path (and that key still accepted).
   */
  private final Map<String, String> verifiedRoots = java.util.Collections.synchronizedMap(
      new java.util.LinkedHashMap<>(1024, 0.75f, true) {
        private static final long serialVersionUID = 1L;

        @Override
        protected boolean removeEldestEntry(Map.Entry<String, String> eldest) {
          return size() > 10_000;
        }
      });

  /**
   * Why a receipt's signature is not accepted, or null when it is: its path leads to its batch root,
   * and a key of its node that is not revoked signed that root (ADR 18: the current key or a retired one).
   */
  private SignatureProblem signatureProblem(SignedReceipt sr, List<NodeKeyInUse> keys) {
    String nodeId = sr.receipt().nodeId();
    if (!io.anneal.billing.merkle.MerkleTree.verify(sr.leafHash(), sr.proof(), sr.batchRoot())) {
      return SignatureProblem.bad("bad signature from node " + nodeId + ": the receipt is not in the batch it names");
    }
    String rootKey = io.anneal.billing.ledger.SettlementPlan.batchKey(sr);
    String signedBy = verifiedRoots.get(rootKey);
    for (NodeKeyInUse k : keys) {
      if (k.key().accepted() && k.key().publicKey().equals(signedBy)) return null;
    }
    for (NodeKeyInUse k : keys) {
      if (k.decoded() == null || !ReceiptVerifier.rootSigned(sr.batchRoot(), sr.signature(), k.decoded())) continue;
      if (!k.key().accepted()) {
        return new SignatureProblem("bad signature from node " + nodeId + ": signed with its revoked key "
            + io.anneal.billing.receipt.ReceiptCheck.fingerprint(k.key().publicKey()), true, false);
      }
      verifiedRoots.put(rootKey, k.key().publicKey());
      return null;
    }
    return SignatureProblem.bad("bad signature from node " + nodeId);
  }

  /**
   * Why a receipt's signature is not accepted: the reason kept with the refused receipt, whether a
   * revoked key of its node made it (counted apart from other bad signatures), whether its node has
   * no key at all.
   */
  private record SignatureProblem(String why, boolean revokedKey, boolean unknownNode) {
    static SignatureProblem bad(String why) {
      return new SignatureProblem(why, false, false);
    }
  }

  /** A node key as read from the ledger, decoded once (null when it cannot be read). */
  private record NodeKeyInUse(io.anneal.billing.ledger.NodeKey key, PublicKey decoded) {}

  /** A node's keys as last read, and when. */
  private record KnownKeys(List<NodeKeyInUse> keys, long readAtMs) {}

  /**
   * How long a node's keys are used before they are read again. A rotation or revocation in this
   * process is heard at once ({@link BillingAddresses#NODE_KEYS_CHANGED}); one made by another process
   * sharing the ledger is seen within this time.
   */
  static final long KEYS_FRESH_MS = 30_000;

  private Future<List<NodeKeyInUse>> keysOf(String nodeId) {
    KnownKeys known = nodeKeys.get(nodeId);
    long now = keysClock.getAsLong();
    if (known != null && now - known.readAtMs() < KEYS_FRESH_MS) return Future.succeededFuture(known.keys());
    return here(ledger.nodeKeys(nodeId).map(list -> {
      List<NodeKeyInUse> keys = new java.util.ArrayList<>();
      for (io.anneal.billing.ledger.NodeKey k : list) {
        PublicKey decoded;
        try {
          decoded = NodeKeys.decodePublic(k.publicKey());
        } catch (IllegalArgumentException e) {
          decoded = null;
        }
        keys.add(new NodeKeyInUse(k, decoded));
      }
      if (!keys.isEmpty()) nodeKeys.put(nodeId, new KnownKeys(List.copyOf(keys), now));
      return keys;
    }));
  }

  /** Why a receipt's signature is not accepted under its node's keys as known here, or null. */
  private Future<SignatureProblem> checkSignature(SignedReceipt sr) {
    String nodeId = sr.receipt().nodeId();
    return keysOf(nodeId).compose(keys -> keys.isEmpty()
        ? Future.succeededFuture(new SignatureProblem("unknown node " + nodeId, false, true))
        // an Ed25519 check costs about a millisecond: off the event loop, and once per signed batch
        : vertx.executeBlocking(() -> signatureProblem(sr, keys)));
  }

  /** Keys older than this are read again before a receipt is refused on them. */
  static final long KEYS_RECHECK_MS = 1_000;

  /** Forgets a node's keys if they were read more than {@code ageMs} ago; whether it did. */
  private boolean forgetIfOlderThan(String nodeId, long ageMs) {
    KnownKeys known = nodeKeys.get(nodeId);
    if (known == null || keysClock.getAsLong() - known.readAtMs() <= ageMs) return false;
    forgetKeys(nodeId);
    return true;
  }

  /** A node's keys changed: read again before its next receipt, and no batch root checked before is taken on trust. */
  private void forgetKeys(String nodeId) {
    if (nodeId == null) return;
    nodeKeys.remove(nodeId);
    synchronized (verifiedRoots) {
      verifiedRoots.keySet().removeIf(k -> k.startsWith(nodeId + "/"));
    }
  }

  /** The outcome of a ledger call, back on this verticle's context (an adapter may complete it on its own thread). */
  private <T> Future<T> here(Future<T> f) {
    return Future.fromCompletionStage(f.toCompletionStage(), context);
  }
}
