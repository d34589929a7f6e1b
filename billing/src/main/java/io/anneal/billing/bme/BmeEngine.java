package io.anneal.billing.bme;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * The ticked BME state machine of bme-spec sections 4, 8, 9 and 10: deterministic, single-writer,
 * no I/O. Every state change happens through {@link #credit}, {@link #fundVault},
 * {@link #transferAct}, {@link #request} and {@link #endTick}; the executed and cancelled records of
 * each tick are what the ledger persists, and every operation also records the ledger postings it
 * implies ({@link #drainJournal}), so that nothing changes state outside the ledger.
 */
public final class BmeEngine {
  /** A queued conversion. */
  public static final class Pending {
    private final RequestId id;
    private final long amount;
    private int attempts;

    Pending(RequestId id, long amount) {
      this.id = id;
      this.amount = amount;
    }

    public RequestId id() {
      return id;
    }

    public long amount() {
      return amount;
    }

    public int attempts() {
      return attempts;
    }
  }

  private BmeParams params;
  private long vaultAkt;
  private long pendingAkt;
  private long pendingAct;
  private long engineAct;
  private long actSupply;
  private long remintCredits;
  private long totalMintedUact;
  private long totalMintedUakt;
  private long totalBurnedUact;
  private long movedToFund;
  private BreakerState breaker;
  private long mintEpoch;
  private long burnEpoch;
  private long tick;
  private long seq;
  private boolean inTick;
  private OracleSnapshot oracle = new OracleSnapshot(false, Dec.ZERO);
  private final TreeMap<RequestId, Pending> pending = new TreeMap<>();
  private final TreeMap<String, long[]> balances = new TreeMap<>();
  private final List<Executed> executed = new ArrayList<>();
  private final List<Canceled> canceled = new ArrayList<>();
  private final List<JournalEntry> journal = new ArrayList<>();

  private BmeEngine(BmeParams params) {
    this.params = params;
    this.breaker = BreakerState.genesis(params);
    this.mintEpoch = params.minEpochBlocks();
    this.burnEpoch = params.minEpochBlocks();
  }

  /** bme-spec section 4 "Genesis". */
  public static BmeEngine genesis(BmeParams params) {
    params.validate().ifPresent(code -> {
      throw new IllegalArgumentException("invalid BME parameters: " + code);
    });
    return new BmeEngine(params);
  }

  /** Takes effect from the next operation; epochs already set are not rescheduled. */
  public void setParams(BmeParams p) {
    p.validate().ifPresent(code -> {
      throw new IllegalArgumentException("invalid BME parameters: " + code);
    });
    this.params = p;
  }

  // ------------------------------------------------------------------ accounts

  private static JournalEntry.Line line(String account, String denom, long amount) {
    return new JournalEntry.Line(account, denom, amount);
  }

  private void record(String kind, String ref, JournalEntry.Line... lines) {
    journal.add(new JournalEntry(kind, ref, List.of(lines)));
  }

  /** The postings of every operation since the last call, in order (then forgotten). */
  public List<JournalEntry> drainJournal() {
    List<JournalEntry> out = List.copyOf(journal);
    journal.clear();
    return out;
  }

  private long[] account(String name) {
    return balances.computeIfAbsent(Objects.requireNonNull(name, "account"), k -> new long[2]);
  }

  private static int idx(String denom) {
    return switch (denom) {
      case "uact" -> 0;
      case "uakt" -> 1;
      default -> throw new IllegalArgumentException("unknown denom " + denom);
    };
  }

  public long balance(String account, String denom) {
    long[] b = balances.get(account);
    return b == null ? 0 : b[idx(denom)];
  }

  /** Test faucet / external deposit: AKT arrives in an account from outside. */
  public void credit(String account, long uakt) throws BmeException {
    if (uakt <= 0) throw new BmeException(BmeError.INVALID_AMOUNT, "credit must be > 0");
    long[] b = account(account);
    b[1] = Math.addExact(b[1], uakt);
    record("credit", account, line(JournalEntry.EXTERNAL, "uakt", -uakt), line(account, "uakt", uakt));
  }

  /** Section 8.4: AKT from {@code source} into the vault; adds no remint credits. */
  public void fundVault(String source, long uakt) throws BmeException {
    if (uakt <= 0) throw new BmeException(BmeError.INVALID_AMOUNT, "fund amount must be > 0");
    long[] b = account(source);
    if (b[1] < uakt) throw new BmeException(BmeError.INSUFFICIENT_FUNDS, source + " holds " + b[1] + " uakt");
    b[1] -= uakt;
    vaultAkt = Math.addExact(vaultAkt, uakt);
    record("fund-vault", source, line(source, "uakt", -uakt), line(JournalEntry.VAULT, "uakt", uakt));
  }

  /** Section 8.2: ACT between users (job settlement); changes no BME state. */
  public void transferAct(String from, String to, long uact) throws BmeException {
    if (uact <= 0) throw new BmeException(BmeError.INVALID_AMOUNT, "transfer must be > 0");
    long[] f = account(from);
    if (f[0] < uact) throw new BmeException(BmeError.INSUFFICIENT_FUNDS, from + " holds " + f[0] + " uact");
    long[] t = account(to);
    f[0] -= uact;
    t[0] = Math.addExact(t[0], uact);
    record("transfer", from + "->" + to, line(from, "uact", -uact), line(to, "uact", uact));
  }

  /**
   * bme-spec 16.3 (ours, used only when the bootstrap fund is on): moves mint-spread ACT the engine
   * holds into the fund's account. Pending redemptions are not spread and cannot be moved.
   */
  public void moveSpreadToFund(String fund, long uact) throws BmeException {
    if (uact <= 0) throw new BmeException(BmeError.INVALID_AMOUNT, "amount must be > 0");
    if (spreadHeld() < uact) throw new BmeException(BmeError.INSUFFICIENT_FUNDS, "engine holds " + spreadHeld() + " uact of spread");
    engineAct -= uact;
    movedToFund = Math.addExact(movedToFund, uact);
    long[] f = account(fund);
    f[0] = Math.addExact(f[0], uact);
    record("fund-move", fund, line(JournalEntry.ENGINE, "uact", -uact), line(fund, "uact", uact));
  }

  /** Spread ACT held by the engine: {@code engineAct − pendingAct}. */
  public long spreadHeld() {
    return engineAct - pendingAct;
  }

  /** Spread ACT moved to the bootstrap fund so far (16.3: engineAct = Ms − movedToFund + pendingAct). */
  public long movedToFund() {
    return movedToFund;
  }

  // ------------------------------------------------------------------ ticks

  /** Starts tick {@code h} (the next one: none is skipped) with the oracle snapshot it will see. */
  public void beginTick(long h, OracleSnapshot snapshot) {
    if (inTick) throw new IllegalStateException("tick " + tick + " has not ended");
    if (h != tick + 1) throw new IllegalArgumentException("ticks are consecutive: expected " + (tick + 1) + ", got " + h);
    tick = h;
    seq = 0;
    inTick = true;
    oracle = Objects.requireNonNull(snapshot, "snapshot");
    executed.clear();
    canceled.clear();
  }

  /** Section 8.1. Returns the id of the queued request; on refusal nothing changed. */
  public RequestId request(String owner, Direction dir, long amount) throws BmeException {
    requireTick();
    if (owner == null || owner.isEmpty()) throw new BmeException(BmeError.UNAUTHORIZED, "no owner");
    if (amount <= 0) throw new BmeException(BmeError.INVALID_AMOUNT, "amount must be > 0");
    oracle.price(dir.fromDenom());
    oracle.price(dir.toDenom());
    Status st = breaker.status();
    if (st.compareTo(Status.HALT_CR) > 0) throw new BmeException(BmeError.CIRCUIT_BREAKER, "circuit breaker " + st);
    if (st == Status.HALT_CR && dir != Direction.ACT_TO_AKT) {
      throw new BmeException(BmeError.CIRCUIT_BREAKER, "circuit breaker HALT_CR: mints are paused");
    }
    BmeParams.Options opt = params.options();
    if (opt.rejectBelowMinMint() && dir == Direction.AKT_TO_ACT) {
      try {
        Bme.quote(dir, BigInteger.valueOf(amount), oracle, params, null);
      } catch (BmeException e) {
        // below the minimum (or one base unit) at today's price: refused now instead of cancelled later;
        // a zero price is still admitted, as without the option
        if (e.code() == BmeError.MINIMUM_MINT || e.code() == BmeError.EPSILON) throw e;
      }
    }
    if (opt.maxQueueDepth() > 0 && dir == Direction.AKT_TO_ACT && queued(dir) >= opt.maxQueueDepth()) {
      throw new BmeException(BmeError.QUEUE_FULL, "the mint queue holds " + opt.maxQueueDepth() + " requests");
    }
    int in = idx(dir.fromDenom());
    long[] b = account(owner);
    if (b[in] < amount) throw new BmeException(BmeError.INSUFFICIENT_FUNDS, owner + " holds " + b[in] + " " + dir.fromDenom());
    seq++;
    RequestId id = new RequestId(dir, owner, tick, seq);
    b[in] -= amount;
    if (dir == Direction.AKT_TO_ACT) {
      vaultAkt = Math.addExact(vaultAkt, amount);
      pendingAkt = Math.addExact(pendingAkt, amount);
      record("request", id.toString(), line(owner, "uakt", -amount), line(JournalEntry.VAULT, "uakt", amount));
    } else {
      engineAct = Math.addExact(engineAct, amount);
      pendingAct = Math.addExact(pendingAct, amount);
      record("request", id.toString(), line(owner, "uact", -amount), line(JournalEntry.ENGINE, "uact", amount));
    }
    pending.put(id, new Pending(id, amount));
    return id;
  }

  /**
   * bme-spec 16.4 "exact USD" top-up (option {@code exactUsd}): an AKT→ACT request for
   * {@code ceil(usd / P)} uakt at this tick's price, so that the mint buys at least {@code usd} of
   * ACT before the spread. {@code usd} is in dollars (e.g. {@code 25.50}).
   */
  public RequestId requestUsd(String owner, java.math.BigDecimal usd) throws BmeException {
    requireTick();
    if (!params.options().exactUsd()) throw new BmeException(BmeError.OPTION_OFF, "exact-USD top-ups are off");
    return request(owner, Direction.AKT_TO_ACT, Bme.uaktForUsd(usd, oracle));
  }

  /** Requests queued in one direction. */
  private long queued(Direction dir) {
    long n = 0;
    for (RequestId id : pending.keySet()) if (id.direction() == dir) n++;
    return n;
  }

  /** Section 9.1: redemption batch, status update, mint scheduling and batch. */
  public void endTick() {
    requireTick();
    long h = tick;
    int[] processed = {0};
    if (burnEpoch <= h) {
      burnEpoch = h + params.minEpochBlocks();
      runBatch(Direction.ACT_TO_AKT, processed);
    }
    StatusUpdate u = updateStatus();
    if (u.changed() && u.state().previousStatus().compareTo(Status.HALT_CR) >= 0
        && u.state().status().compareTo(Status.WARNING) <= 0) {
      mintEpoch = h + u.state().epochHeightDiff();
    } else if (u.state().status().compareTo(Status.WARNING) <= 0 && mintEpoch == h) {
      mintEpoch = h + u.state().epochHeightDiff();
      runBatch(Direction.AKT_TO_ACT, processed);
      updateStatus();
    }
    inTick = false;
  }

  private StatusUpdate updateStatus() {
    StatusUpdate u = Bme.nextStatus(breaker, BigInteger.valueOf(vaultAkt), BigInteger.valueOf(pendingAkt),
        BigInteger.valueOf(actSupply), oracle, params);
    breaker = u.state();
    return u;
  }

  private void requireTick() {
    if (!inTick) throw new IllegalStateException("no tick in progress: call beginTick first");
  }

  /** Section 9.2: key order, shared budget, the first record of a batch always runs. */
  private void runBatch(Direction dir, int[] processed) {
    List<RequestId> keys = new ArrayList<>();
    for (RequestId id : pending.keySet()) {
      if (id.direction() == dir) keys.add(id);
    }
    if (params.options().fifoQueue()) keys.sort(FIFO);
    for (int i = 0; i < keys.size(); i++) {
      if (i > 0 && processed[0] >= params.maxEndblockerRecords()) break;
      execute(pending.get(keys.get(i)));
      processed[0]++;
    }
  }

  private void execute(Pending p) {
    RequestId id = p.id();
    Quote q;
    try {
      q = Bme.quote(id.direction(), BigInteger.valueOf(p.amount()), oracle, params, BigInteger.valueOf(actSupply));
    } catch (BmeException e) {
      fail(p, e.code());
      return;
    }
    long mint = q.mintAmount().longValueExact();
    long spread = q.spreadAmount().longValueExact();
    long user = q.userAmount().longValueExact();
    long[] owner = account(id.owner());
    if (id.direction() == Direction.AKT_TO_ACT) {
      actSupply = Math.addExact(actSupply, mint);
      owner[0] = Math.addExact(owner[0], user);
      engineAct = Math.addExact(engineAct, spread);
      remintCredits = Math.addExact(remintCredits, p.amount());
      pendingAkt -= p.amount();
      totalMintedUact = Math.addExact(totalMintedUact, mint);
      pending.remove(id);
      executed.add(new Executed(id, id.direction(), p.amount(), q.swapRate(), mint, spread, user, p.amount(), 0, mint,
          oracle.priceAkt(), tick, breaker.status()));
      record("mint", id.toString(), line(JournalEntry.ACT_ISSUANCE, "uact", -mint), line(id.owner(), "uact", user),
          line(JournalEntry.ENGINE, "uact", spread));
    } else {
      RemintSplit s = Bme.remintSplit(q.mintAmount(), q.spreadAmount(), BigInteger.valueOf(remintCredits));
      long issued = s.remintIssued().longValueExact();
      long fresh = s.newlyMintedAkt().longValueExact();
      long newVault = vaultAkt + fresh - user;
      if (newVault < 0) {
        fail(p, BmeError.INSUFFICIENT_FUNDS); // the vault cannot pay: retriable, no trace
        return;
      }
      actSupply -= p.amount();
      engineAct -= p.amount();
      pendingAct -= p.amount();
      totalBurnedUact = Math.addExact(totalBurnedUact, p.amount());
      remintCredits -= issued;
      vaultAkt = newVault;
      owner[1] = Math.addExact(owner[1], user);
      totalMintedUakt = Math.addExact(totalMintedUakt, fresh);
      pending.remove(id);
      executed.add(new Executed(id, id.direction(), p.amount(), q.swapRate(), mint, spread, user, 0, issued, fresh,
          oracle.priceAkt(), tick, breaker.status()));
      record("redeem", id.toString(), line(JournalEntry.ENGINE, "uact", -p.amount()),
          line(JournalEntry.ACT_ISSUANCE, "uact", p.amount()), line(JournalEntry.AKT_ISSUANCE, "uakt", -fresh),
          line(JournalEntry.VAULT, "uakt", fresh - user), line(id.owner(), "uakt", user));
    }
  }

  /** Section 10.4: fatal → cancel now; retriable → count, cancel after maxPendingAttempts. */
  private void fail(Pending p, BmeError code) {
    if (code.fatal()) {
      cancel(p, code);
      return;
    }
    p.attempts++;
    if (p.attempts >= params.maxPendingAttempts()) cancel(p, BmeError.MAX_ATTEMPTS);
  }

  private void cancel(Pending p, BmeError reason) {
    RequestId id = p.id();
    pending.remove(id);
    long[] owner = account(id.owner());
    if (id.direction() == Direction.AKT_TO_ACT) {
      pendingAkt -= p.amount();
      vaultAkt -= p.amount();
      owner[1] = Math.addExact(owner[1], p.amount());
      record("cancel", id.toString(), line(JournalEntry.VAULT, "uakt", -p.amount()), line(id.owner(), "uakt", p.amount()));
    } else {
      pendingAct -= p.amount();
      engineAct -= p.amount();
      owner[0] = Math.addExact(owner[0], p.amount());
      record("cancel", id.toString(), line(JournalEntry.ENGINE, "uact", -p.amount()), line(id.owner(), "uact", p.amount()));
    }
    canceled.add(new Canceled(id, id.owner(), p.amount(), id.direction().fromDenom(), reason, tick));
  }

  // ------------------------------------------------------------------ queries

  public long tick() {
    return tick;
  }

  public BmeParams params() {
    return params;
  }

  public OracleSnapshot oracle() {
    return oracle;
  }

  public long vaultAkt() {
    return vaultAkt;
  }

  public long pendingAkt() {
    return pendingAkt;
  }

  public long pendingAct() {
    return pendingAct;
  }

  public long engineAct() {
    return engineAct;
  }

  public long actSupply() {
    return actSupply;
  }

  public long remintCredits() {
    return remintCredits;
  }

  public long totalMintedUact() {
    return totalMintedUact;
  }

  public long totalMintedUakt() {
    return totalMintedUakt;
  }

  public long totalBurnedUact() {
    return totalBurnedUact;
  }

  public BreakerState breaker() {
    return breaker;
  }

  public long mintEpoch() {
    return mintEpoch;
  }

  public long burnEpoch() {
    return burnEpoch;
  }

  /** Executed records of the current (or last ended) tick, in order. */
  public List<Executed> executed() {
    return Collections.unmodifiableList(executed);
  }

  public List<Canceled> canceled() {
    return Collections.unmodifiableList(canceled);
  }

  /** Queued requests in queue order: key order (9.3), or request order with the FIFO option (16.4). */
  public List<Pending> pending() {
    List<Pending> out = new ArrayList<>(pending.values());
    if (params.options().fifoQueue()) out.sort((x, y) -> FIFO.compare(x.id(), y.id()));
    return List.copyOf(out);
  }

  /** 16.4 FIFO order within a direction: (tick, seq). */
  private static final java.util.Comparator<RequestId> FIFO =
      java.util.Comparator.comparingLong(RequestId::tick).thenComparingLong(RequestId::seq);

  /** Every account the engine has seen, with {uact, uakt}. */
  public Map<String, long[]> balances() {
    Map<String, long[]> copy = new TreeMap<>();
    balances.forEach((k, v) -> copy.put(k, v.clone()));
    return copy;
  }

  /** CR of the current state with the current tick's oracle, or null when the oracle fails. */
  public CollateralRatio collateralRatioOrNull() {
    try {
      return Bme.collateralRatio(BigInteger.valueOf(vaultAkt), BigInteger.valueOf(pendingAkt),
          BigInteger.valueOf(actSupply), oracle);
    } catch (BmeException e) {
      return null;
    }
  }
}
