package io.anneal.billing.ledger;

import io.anneal.billing.bme.Bme;
import io.anneal.billing.bme.BmeException;
import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.BreakerState;
import io.anneal.billing.bme.Direction;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.bme.Quote;
import io.anneal.billing.bme.Status;
import io.anneal.billing.bme.StatusUpdate;
import io.anneal.billing.merkle.MerkleTree;
import io.anneal.billing.receipt.SignedReceipt;
import io.anneal.billing.sql.Database;
import java.math.BigInteger;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Base64;

/**
 * The ledger on SQL (H2 or PostgreSQL, one SQL text). Every method works inside the caller's
 * transaction on the given connection and never commits: the caller (a group-commit writer) does.
 * A refused operation leaves the connection's transaction as it found it.
 */
public final class SqlLedger {
  private static final BigInteger NANOS_PER_HOUR = BigInteger.valueOf(3_600_000_000_000L);
  private static final HexFormat HEX = HexFormat.of();

  private SqlLedger() {}

  // ---------------------------------------------------------------- postings

  /**
   * Records one balanced transaction. Returns its id, or empty when {@code ref} was recorded before
   * (nothing is written then). Throws {@link Refused} with INSUFFICIENT_FUNDS, after undoing its own
   * partial updates, when a debit would take a non-negative account below zero.
   */
  public static Optional<Long> post(Connection c, String kind, String ref, List<Posting> postings) throws SQLException {
    checkBalanced(postings);
    if (txIdByRef(c, ref).isPresent()) return Optional.empty();
    List<Posting> applied = new ArrayList<>();
    for (Posting p : postings) {
      if (!applyBalance(c, p)) {
        for (Posting done : applied) applyBalance(c, new Posting(done.account(), done.denom(), -done.amount()));
        throw new Refused(LedgerRefusal.INSUFFICIENT_FUNDS, p.account() + " has less than " + -p.amount() + " " + p.denom());
      }
      applied.add(p);
    }
    long txId = insertTx(c, kind, ref);
    insertPostings(c, txId, postings);
    return Optional.of(txId);
  }

  private static long insertTx(Connection c, String kind, String ref) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO ledger_tx (kind, ref) VALUES (?, ?)", new String[] {"id"})) {
      ps.setString(1, kind);
      ps.setString(2, ref);
      ps.executeUpdate();
      try (ResultSet rs = ps.getGeneratedKeys()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  private static void insertPostings(Connection c, long txId, List<Posting> postings) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO posting (tx_id, account, denom, amount) VALUES (?, ?, ?, ?)")) {
      for (Posting p : postings) {
        ps.setLong(1, txId);
        ps.setString(2, p.account());
        ps.setString(3, p.denom());
        ps.setLong(4, p.amount());
        ps.addBatch();
      }
      ps.executeBatch();
    }
  }

  /** An expected refusal: the operation changed nothing. */
  public static final class Refused extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final LedgerRefusal reason;

    public Refused(LedgerRefusal reason, String message) {
      super(message, null, false, false);
      this.reason = reason;
    }

    public LedgerRefusal reason() {
      return reason;
    }
  }

  static void checkBalanced(List<Posting> postings) {
    // an empty transaction is allowed: it records that something (e.g. a free job) was settled
    Map<String, Long> sums = new HashMap<>();
    for (Posting p : postings) sums.merge(p.denom(), p.amount(), Math::addExact);
    sums.forEach((denom, sum) -> {
      if (sum != 0) throw new IllegalArgumentException("unbalanced transaction: " + denom + " sums to " + sum);
    });
  }

  private static boolean applyBalance(Connection c, Posting p) throws SQLException {
    boolean checked = !Accounts.mayGoNegative(p.account()) && p.amount() < 0;
    String sql = checked
        ? "UPDATE balance SET amount = amount + ? WHERE account = ? AND denom = ? AND amount >= ?"
        : "UPDATE balance SET amount = amount + ? WHERE account = ? AND denom = ?";
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      ps.setLong(1, p.amount());
      ps.setString(2, p.account());
      ps.setString(3, p.denom());
      if (checked) ps.setLong(4, -p.amount());
      if (ps.executeUpdate() == 1) return true;
    }
    if (checked) return false;
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO balance (account, denom, amount) VALUES (?, ?, ?)")) {
      ps.setString(1, p.account());
      ps.setString(2, p.denom());
      ps.setLong(3, p.amount());
      ps.executeUpdate();
    }
    return true;
  }

  public static Optional<Long> txIdByRef(Connection c, String ref) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT id FROM ledger_tx WHERE ref = ?")) {
      ps.setString(1, ref);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? Optional.of(rs.getLong(1)) : Optional.empty();
      }
    }
  }

  public static long balance(Connection c, String account, String denom) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT amount FROM balance WHERE account = ? AND denom = ?")) {
      ps.setString(1, account);
      ps.setString(2, denom);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? rs.getLong(1) : 0L;
      }
    }
  }

  // ---------------------------------------------------------------- escrow

  /** Maximum cost of a job: GPUs × seconds at the quoted price, rounded up to a whole uact. */
  public static long maxCostUact(int gpus, long maxSeconds, long priceUactPerGpuHour) {
    BigInteger[] qr = BigInteger.valueOf(gpus).multiply(BigInteger.valueOf(maxSeconds))
        .multiply(BigInteger.valueOf(priceUactPerGpuHour)).divideAndRemainder(BigInteger.valueOf(3600));
    return qr[0].add(qr[1].signum() > 0 ? BigInteger.ONE : BigInteger.ZERO).longValueExact();
  }

  /** Charge for measured GPU time (nanoseconds summed over GPUs), rounded down to a whole uact. */
  public static long chargeUact(long gpuNanos, long priceUactPerGpuHour) {
    return BigInteger.valueOf(gpuNanos).multiply(BigInteger.valueOf(priceUactPerGpuHour)).divide(NANOS_PER_HOUR)
        .longValueExact();
  }

  /** Moves the job's maximum cost from the tenant's ACT into escrow. Refused if the tenant is short. */
  /**
   * Holds escrow for many jobs at once, set-based (ADR 0006): one read of the tenants' balances,
   * each hold decided in order against what its tenant has left, one journal entry for the batch with
   * postings summed per tenant, the escrow rows (the line items) in one statement. Returns, per
   * hold in order, null when it was taken or the refusal (nothing is written for a refused hold).
   * Relies on being the only writer of these balances (the group-commit writer).
   */
  public static List<Refused> holdAll(Connection c, List<EscrowHold> holds) throws SQLException {
    return holdAll(c, holds, null);
  }

  /** As above; {@code heldUakt}, when given, receives per hold the uakt held from an AKT-direct deposit (16.5), else 0. */
  public static List<Refused> holdAll(Connection c, List<EscrowHold> holds, long[] heldUakt) throws SQLException {
    List<Refused> out = new ArrayList<>(java.util.Collections.nCopies(holds.size(), (Refused) null));
    Map<String, Long> available = new HashMap<>();
    List<String> accounts = new ArrayList<>();
    List<String> jobIds = new ArrayList<>();
    for (EscrowHold h : holds) {
      accounts.add(Accounts.tenant(h.tenantId()));
      jobIds.add(h.jobId());
    }
    selectAny(c, "SELECT account, amount FROM balance WHERE denom = 'uact' AND account = ANY(?)", accounts,
        rs -> available.put(rs.getString(1), rs.getLong(2)));
    java.util.Set<String> held = new java.util.HashSet<>();
    selectAny(c, Database.keyed(c, "t.job_id", "escrow", "job_id", null), jobIds, rs -> held.add(rs.getString(1)));
    Map<String, long[]> deltas = new LinkedHashMap<>();
    Map<String, long[]> aktDeltas = new LinkedHashMap<>();
    Map<String, Long> aktAvailable = null; // read once, only if some hold falls back to AKT
    Boolean halted = null;
    List<EscrowHold> taken = new ArrayList<>();
    for (int i = 0; i < holds.size(); i++) {
      EscrowHold h = holds.get(i);
      String tenant = Accounts.tenant(h.tenantId());
      long has = available.getOrDefault(tenant, 0L);
      if (h.amountUact() < 0) {
        out.set(i, new Refused(LedgerRefusal.INVALID_AMOUNT, "escrow must be >= 0"));
      } else if (!held.add(h.jobId())) {
        out.set(i, new Refused(LedgerRefusal.DUPLICATE, "job " + h.jobId() + " already holds escrow"));
      } else if (has >= h.amountUact()) {
        available.put(tenant, has - h.amountUact());
        deltas.computeIfAbsent(tenant, k -> new long[1])[0] -= h.amountUact();
        deltas.computeIfAbsent(Accounts.escrow(h.tenantId()), k -> new long[1])[0] += h.amountUact();
        taken.add(new EscrowHold(h.jobId(), h.tenantId(), h.amountUact(), h.priceUactPerGpuHour(), h.gpuClass(), h.gpus()));
      } else {
        // bme-spec 16.5: while halted, with a healthy oracle (the offer), pay from the tenant's AKT deposit
        if (h.aktOffer() != null && halted == null) halted = AktDirect.allowedIn(Status.valueOf(storedStatus(c)));
        if (h.aktOffer() != null && halted && aktAvailable == null) {
          Map<String, Long> akt = new HashMap<>();
          List<String> owners = new ArrayList<>();
          for (EscrowHold x : holds) owners.add(Accounts.tenant(x.tenantId()));
          selectAny(c, "SELECT account, amount FROM balance WHERE denom = 'uakt' AND account = ANY(?)", owners,
              rs -> akt.put(rs.getString(1), rs.getLong(2)));
          aktAvailable = akt;
        }
        long needUakt = h.aktOffer() != null && halted ? AktDirect.holdUakt(h.amountUact(), h.aktOffer()) : -1;
        long hasUakt = aktAvailable == null ? 0 : aktAvailable.getOrDefault(tenant, 0L);
        if (needUakt >= 0 && hasUakt >= needUakt) {
          aktAvailable.put(tenant, hasUakt - needUakt);
          aktDeltas.computeIfAbsent(tenant, k -> new long[1])[0] -= needUakt;
          aktDeltas.computeIfAbsent(Accounts.escrow(h.tenantId()), k -> new long[1])[0] += needUakt;
          taken.add(new EscrowHold(h.jobId(), h.tenantId(), h.amountUact(), h.priceUactPerGpuHour(), h.gpuClass(), h.gpus(),
              null, h.aktOffer(), needUakt));
          if (heldUakt != null) heldUakt[i] = needUakt;
        } else {
          out.set(i, new Refused(LedgerRefusal.INSUFFICIENT_FUNDS, tenant + " has less than " + h.amountUact() + " uact"
              + (needUakt >= 0 ? " and less than " + needUakt + " uakt of AKT-direct deposit" : "")));
        }
      }
    }
    if (taken.isEmpty()) return out;
    deltas.values().removeIf(d -> d[0] == 0);
    aktDeltas.values().removeIf(d -> d[0] == 0);
    if (!deltas.isEmpty() || !aktDeltas.isEmpty()) {
      List<Posting> postings = new ArrayList<>();
      deltas.forEach((account, d) -> postings.add(new Posting(account, "uact", d[0])));
      aktDeltas.forEach((account, d) -> postings.add(new Posting(account, "uakt", d[0])));
      long tx = insertTx(c, "escrow.hold", "hold:" + taken.get(0).jobId() + (taken.size() > 1 ? "+" + (taken.size() - 1) : ""));
      insertPostings(c, tx, postings);
      applyDeltas(c, summed(deltas), "uact");
      applyDeltas(c, summed(aktDeltas), "uakt");
      heldBy(c, tx, taken.stream().map(EscrowHold::jobId).toArray(String[]::new));
    }
    int m = taken.size();
    String[][] text = new String[4][m]; // job_id, tenant_id, gpu_class, akt_price
    Long[][] nums = new Long[4][m]; // amount, price, gpus, held_uakt
    for (int k = 0; k < m; k++) {
      EscrowHold h = taken.get(k);
      text[0][k] = h.jobId();
      text[1][k] = h.tenantId();
      text[2][k] = h.gpuClass();
      text[3][k] = h.aktPrice();
      nums[0][k] = h.amountUact();
      nums[1][k] = h.priceUactPerGpuHour();
      nums[2][k] = (long) h.gpus();
      nums[3][k] = h.heldUakt();
    }
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO escrow (job_id, tenant_id, amount_uact, price_uact_gpu_hour,"
        + " gpu_class, gpus, held_uakt, akt_price, state) SELECT v.*, 'OPEN' FROM unnest(CAST(? AS VARCHAR ARRAY),"
        + " CAST(? AS VARCHAR ARRAY), CAST(? AS BIGINT ARRAY), CAST(? AS BIGINT ARRAY), CAST(? AS VARCHAR ARRAY),"
        + " CAST(? AS BIGINT ARRAY), CAST(? AS BIGINT ARRAY), CAST(? AS VARCHAR ARRAY)) AS v")) {
      Database.setArray(ps, 1, "varchar", text[0]);
      Database.setArray(ps, 2, "varchar", text[1]);
      Database.setArray(ps, 3, "bigint", nums[0]);
      Database.setArray(ps, 4, "bigint", nums[1]);
      Database.setArray(ps, 5, "varchar", text[2]);
      Database.setArray(ps, 6, "bigint", nums[2]);
      Database.setArray(ps, 7, "bigint", nums[3]);
      Database.setArray(ps, 8, "varchar", text[3]);
      ps.executeUpdate();
    }
    return out;
  }

  /**
   * The first {@code limit} pending requests of one direction in bme-spec 9.3 order — owner key
   * (UTF-8 byte length, then bytes), then tick and sequence, which the request id's insertion order
   * gives — into {@code queue} ({id, amount, attempts}) and {@code owners}. Sorted here, not by SQL:
   * {@code ORDER BY owner} compares strings, so "tenant:t10" would come before "tenant:t9", and
   * collations differ between databases.
   */
  /**
   * The first {@code limit} pending requests of a direction in queue order: bme-spec 9.3's owner key
   * then request order, or request order alone with the 16.4 FIFO option ({@code fifo}).
   */
  static void pendingInSpecOrder(Connection c, String direction, boolean fifo, int limit, List<long[]> queue,
      List<String> owners) throws SQLException {
    List<Object[]> rows = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT id, owner, amount, attempts FROM bme_request WHERE state = 'PENDING' AND direction = ?")) {
      ps.setString(1, direction);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) rows.add(new Object[] {rs.getString(2), new long[] {rs.getLong(1), rs.getLong(3), rs.getInt(4)}});
      }
    }
    rows.sort((x, y) -> {
      int o = fifo ? 0 : io.anneal.billing.bme.RequestId.compareOwners((String) x[0], (String) y[0]);
      return o != 0 ? o : Long.compare(((long[]) x[1])[0], ((long[]) y[1])[0]);
    });
    for (int i = 0; i < Math.min(limit, rows.size()); i++) {
      owners.add((String) rows.get(i)[0]);
      queue.add((long[]) rows.get(i)[1]);
    }
  }

  /** The breaker status stored at the end of the last tick (bme-spec 7.3: admission uses it). */
  public static String storedStatus(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT status FROM bme_state WHERE id = 1");
        ResultSet rs = ps.executeQuery()) {
      rs.next();
      return rs.getString(1);
    }
  }

  public static void hold(Connection c, EscrowHold h) throws SQLException {
    if (h.amountUact() > 0) {
      Optional<Long> tx = post(c, "escrow.hold", "hold:" + h.jobId(), List.of(
          new Posting(Accounts.tenant(h.tenantId()), "uact", -h.amountUact()),
          new Posting(Accounts.escrow(h.tenantId()), "uact", h.amountUact())));
      if (tx.isEmpty()) throw new Refused(LedgerRefusal.DUPLICATE, "job " + h.jobId() + " already holds escrow");
      heldBy(c, tx.get(), new String[] {h.jobId()});
    }
    try (PreparedStatement ps = c.prepareStatement(
        "INSERT INTO escrow (job_id, tenant_id, amount_uact, price_uact_gpu_hour, gpu_class, gpus, state)"
            + " VALUES (?, ?, ?, ?, ?, ?, 'OPEN')")) {
      ps.setString(1, h.jobId());
      ps.setString(2, h.tenantId());
      ps.setLong(3, h.amountUact());
      ps.setLong(4, h.priceUactPerGpuHour());
      ps.setString(5, h.gpuClass());
      ps.setInt(6, h.gpus());
      ps.executeUpdate();
    }
  }

  /** Records that hold entry {@code tx} held {@code jobIds} (V22), for the statement's hold lines. */
  private static void heldBy(Connection c, long tx, String[] jobIds) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO escrow_hold_job (tx_id, job_id) SELECT CAST(? AS BIGINT), v.j"
        + " FROM unnest(CAST(? AS VARCHAR ARRAY)) AS v(j)")) {
      ps.setLong(1, tx);
      Database.setArray(ps, 2, "varchar", jobIds);
      ps.executeUpdate();
    }
  }

  /** Returns the whole escrow of a job that never ran (cancelled while queued). Idempotent. */
  public static boolean release(Connection c, String jobId) throws SQLException {
    Optional<EscrowHold> h = openEscrow(c, jobId);
    if (h.isEmpty()) return false;
    // an escrow holds either uact or (AKT-direct, 16.5) uakt: what it holds goes back
    String denom = h.get().inAkt() ? "uakt" : "uact";
    long amount = h.get().inAkt() ? h.get().heldUakt() : h.get().amountUact();
    if (amount > 0) {
      post(c, "escrow.release", "release:" + jobId, List.of(
          new Posting(Accounts.escrow(h.get().tenantId()), denom, -amount),
          new Posting(Accounts.tenant(h.get().tenantId()), denom, amount)));
    }
    setEscrowState(c, jobId, "RELEASED");
    return true;
  }

  public static Optional<EscrowHold> openEscrow(Connection c, String jobId) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT tenant_id, amount_uact, price_uact_gpu_hour, gpu_class, gpus, akt_price, held_uakt FROM escrow"
            // locked on both engines: a settlement on another connection (lanes on PostgreSQL, the Vert.x
            // ledger on H2) either waits for this transaction, or is waited for and then seen
            + " WHERE job_id = ? AND state = 'OPEN' FOR UPDATE")) {
      ps.setString(1, jobId);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) return Optional.empty();
        return Optional.of(new EscrowHold(jobId, rs.getString(1), rs.getLong(2), rs.getLong(3), rs.getString(4), rs.getInt(5),
            null, rs.getString(6), rs.getLong(7)));
      }
    }
  }

  /**
   * On PostgreSQL an escrow is read with its row locked until the commit: a settlement (in its lane)
   * and a release of the same job (on the store's writer) then see each other's outcome instead of
   * both spending the escrow. On H2 settlement through JDBC runs on the one writer, which also
   * releases; a release locks on both engines ({@link #openEscrow}), for the Vert.x ledger's
   * settlements on H2 (ADR 12).
   */
  private static String forUpdate(Connection c) throws SQLException {
    return Database.isH2(c) ? "" : " FOR UPDATE";
  }

  private static void setEscrowState(Connection c, String jobId, String state) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("UPDATE escrow SET state = ? WHERE job_id = ?")) {
      ps.setString(1, state);
      ps.setString(2, jobId);
      ps.executeUpdate();
    }
  }

  // ---------------------------------------------------------------- settlement

  /**
   * Settlements may commit from several transactions at once (settlement lanes, or several instances
   * on one PostgreSQL). Each takes this barrier shared before its first write; what needs every
   * settlement that will ever carry a smaller journal entry id or an earlier epoch to be committed
   * (closing an epoch, a payout naming the receipts it redeems, a bootstrap window) takes it
   * exclusively with {@link #settlementBarrier}, and so waits for those in flight and holds back new
   * ones until it commits. A transaction-scoped advisory lock per schema on PostgreSQL; on H2 the row
   * of {@code settlement_barrier} (V12), locked by both sides, since settlement there may run on the
   * Vert.x JDBC client's connection beside the store's writer (ADR 12).
   */
  public static void enterSettlement(Connection c) throws SQLException {
    barrier(c, false);
  }

  /**
   * The exclusive side of {@link #enterSettlement}. Take it as the first statement of its own
   * transaction ({@code GroupCommitWriter.submitAlone}): a transaction that holds row locks when it
   * waits here can deadlock with a settlement waiting for those rows.
   */
  public static void settlementBarrier(Connection c) throws SQLException {
    barrier(c, true);
  }

  private static void barrier(Connection c, boolean exclusive) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(barrierSql(!Database.isH2(c), exclusive)); ResultSet rs = ps.executeQuery()) {
      rs.next();
    }
  }

  /**
   * The statement that takes the settlement barrier, shared (a settlement) or exclusive. H2 has no
   * advisory locks: a row both sides lock (V12), exclusively, so settlements there also wait for each
   * other, which costs nothing with the one settlement connection H2 has.
   */
  static String barrierSql(boolean postgres, boolean exclusive) {
    if (!postgres) return "SELECT id FROM settlement_barrier WHERE id = 1 FOR UPDATE";
    return "SELECT " + (exclusive ? "pg_advisory_xact_lock" : "pg_advisory_xact_lock_shared")
        + "(hashtext('anneal.settlement.' || current_schema()))";
  }

  /** A preempted run's charge out of its escrow, which stays open ({@code $}: amount, held AKT, GPU time, job). */
  static final String PARTIAL_ESCROW = "UPDATE escrow SET amount_uact = amount_uact - $, held_uakt = held_uakt - $,"
      + " used_gpu_nanos = used_gpu_nanos + $, partial_runs = partial_runs + 1 WHERE job_id = $";

  /** Escrows closed by their final receipts (the job ids as one array), in the form fast on each engine. */
  static String settledEscrows(boolean postgres) {
    return postgres ? "UPDATE escrow SET state = 'SETTLED' WHERE job_id = ANY($)"
        : "MERGE INTO escrow e USING unnest(CAST($ AS VARCHAR ARRAY)) AS k(v) ON e.job_id = k.v"
            + " WHEN MATCHED THEN UPDATE SET state = 'SETTLED'";
  }

  /**
   * The signatures of signed batches not recorded yet (roots, nodes, signatures as arrays). A batch's
   * receipts may be settled by two transactions at once (settlement lanes): the second waits, then skips.
   */
  static String insertBatches(boolean postgres) {
    return "INSERT INTO receipt_batch (batch_root, node_id, signature) SELECT v.r, v.n, v.s FROM unnest("
        + "CAST($ AS VARCHAR ARRAY), CAST($ AS VARCHAR ARRAY), CAST($ AS VARCHAR ARRAY)) AS v(r, n, s)"
        + " WHERE NOT EXISTS (SELECT 1 FROM receipt_batch b WHERE b.batch_root = v.r)" + (postgres ? " ON CONFLICT DO NOTHING" : "");
  }

  /**
   * Settles a verified receipt exactly once: charges the measured usage out of the job's escrow,
   * pays the provider, returns the rest to the tenant, and records the settlement, all in the
   * caller's transaction. A receipt id seen before returns the first settlement, marked duplicate.
   */
  public static Settlement settle(Connection c, SignedReceipt sr, Map<String, Long> classPrices) throws SQLException {
    return settle(c, sr, classPrices, System.currentTimeMillis(), 3600);
  }

  /** As above, filing the settlement in the accounting epoch of {@code nowMs} ({@code epochSeconds} long). */
  public static Settlement settle(Connection c, SignedReceipt sr, Map<String, Long> classPrices, long nowMs,
      long epochSeconds) throws SQLException {
    return settleAll(c, List.of(sr), classPrices, nowMs, epochSeconds).get(0);
  }

  /**
   * Settles many verified receipts in the caller's transaction with set-based SQL: one read for
   * open escrows, one for the earlier settlements of the receipts they leave unsure
   * ({@link SettlementPlan#mayHaveSettled}), one journal entry for the batch whose postings are
   * summed per account (ADR 0006), one settlement row per receipt as its line item (receipt id,
   * job, charge, refund, the signed receipt and its proof), escrows closed by one statement.
   * Exactly-once per receipt id holds within the batch too: a receipt delivered twice in one batch
   * settles once and the second delivery answers as a duplicate.
   */
  public static List<Settlement> settleAll(Connection c, List<SignedReceipt> receipts, Map<String, Long> classPrices,
      long nowMs, long epochSeconds) throws SQLException {
    return settleAll(c, receipts, (cls, atMs) -> classPrices.get(cls), nowMs, epochSeconds);
  }

  /** The price (uact per GPU-hour) of a GPU class in force at a time, or null when unknown. */
  @FunctionalInterface
  public interface PriceLookup {
    Long priceAt(String gpuClass, long atMs);
  }

  /**
   * As above, charging each run at the price of its GPU class in force when it started (bme-spec
   * 16.2: never retroactively), capped by the price quoted into its escrow.
   */
  public static List<Settlement> settleAll(Connection c, List<SignedReceipt> receipts, PriceLookup prices,
      long nowMs, long epochSeconds) throws SQLException {
    return settleAll(c, receipts, prices, () -> nowMs, epochSeconds);
  }

  /**
   * As above, reading the settlement time from {@code clock} once it holds the settlement barrier
   * (shared), so that the epoch it files into cannot be closed meanwhile.
   */
  public static List<Settlement> settleAll(Connection c, List<SignedReceipt> receipts, PriceLookup prices,
      java.util.function.LongSupplier clock, long epochSeconds) throws SQLException {
    enterSettlement(c);
    long nowMs = clock.getAsLong();
    List<String> jobIds = new ArrayList<>();
    for (SignedReceipt sr : receipts) jobIds.add(sr.receipt().jobId());
    // the escrows first: they tell which receipts may have been settled before (V15), and only those are looked up
    Map<String, SettlementPlan.OpenEscrow> open = openEscrows(c, jobIds);
    List<String> unsure = SettlementPlan.mayHaveSettled(receipts, open);
    Map<String, Settlement> prior = unsure.isEmpty() ? Map.of() : settlementsByIds(c, unsure);
    SettlementPlan plan = SettlementPlan.of(receipts, prior, open, prices, nowMs, epochSeconds,
        SettlementPlan.signedByRevokedKeys(receipts, revokedKeys(c, receipts)));
    if (!plan.writes()) return plan.settlements(0);
    // one journal entry per batch: postings summed per account; the settlement rows are its line items
    List<Posting> postings = plan.postings();
    long tx = insertTx(c, "settle", plan.journalRef());
    if (!postings.isEmpty()) insertPostings(c, tx, postings);
    // one statement for the whole batch: columns as arrays, unnested by the database (H2 and PostgreSQL)
    try (PreparedStatement ins = c.prepareStatement(jdbc(INSERT_SETTLEMENTS))) {
      // settled at nowMs, read after the barrier: not the transaction's start, which may precede a
      // bootstrap window's close that this transaction waited for
      ins.setTimestamp(1, new java.sql.Timestamp(nowMs));
      Object[] columns = plan.settlementColumns(tx);
      for (int k = 0; k < columns.length; k++) {
        Database.setArray(ins, k + 2, columns[k] instanceof Long[] ? "bigint" : "varchar", (Object[]) columns[k]);
      }
      ins.executeUpdate();
    }
    Map<String, String[]> batches = plan.batches();
    insertBatches(c, batches);
    // a row whose batch is recorded under another signature (signed again, ADR 18) keeps its own
    Map<String, String> recorded = new HashMap<>();
    selectAny(c, Database.keyed(c, RECORDED_SIGNATURES, "receipt_batch", "batch_root", null),
        new ArrayList<>(batches.keySet()), rs -> recorded.put(rs.getString(1), rs.getString(2)));
    Map<String, String> own = plan.ownSignatures(recorded);
    if (!own.isEmpty()) {
      try (PreparedStatement ps = c.prepareStatement(jdbc(OWN_SIGNATURE))) {
        for (Map.Entry<String, String> e : own.entrySet()) {
          ps.setString(1, e.getValue());
          ps.setString(2, e.getKey());
          ps.addBatch();
        }
        ps.executeBatch();
      }
    }
    // partial charges first: a final receipt of the same batch settles what remains
    try (PreparedStatement part = c.prepareStatement(jdbc(PARTIAL_ESCROW))) {
      boolean anyPartial = false;
      for (SettlementPlan.Row row : plan.rows()) {
        if (!row.partial()) continue;
        part.setLong(1, row.escrowUactUsed());
        part.setLong(2, row.escrowUaktUsed());
        part.setLong(3, row.gpuNanos());
        part.setString(4, row.jobId());
        part.addBatch();
        anyPartial = true;
      }
      if (anyPartial) part.executeBatch();
    }
    String[] finals = plan.finalJobs();
    if (finals.length > 0) {
      try (PreparedStatement ps = c.prepareStatement(jdbc(settledEscrows(!Database.isH2(c))))) {
        Database.setArray(ps, 1, "varchar", finals);
        ps.executeUpdate();
      }
    }
    // balances last, in account order: the rows every settlement shares are locked only until the commit
    applyDeltas(c, plan.deltas("uact"), "uact");
    applyDeltas(c, plan.deltas("uakt"), "uakt");
    return plan.settlements(tx);
  }

  /** What {@code receipt_batch} holds of the batches a settlement records: root and signature. */
  static final String RECORDED_SIGNATURES = "t.batch_root, t.signature";

  /** A settlement row's own signature ({@code $}: signature, receipt id), see {@link SettlementPlan#ownSignatures}. */
  static final String OWN_SIGNATURE = "UPDATE settlement SET signature = $ WHERE receipt_id = $";

  /**
   * The settlement rows of a batch, as arrays unnested by the database; {@code $} is the parameter
   * marker (JDBC takes {@code ?}, the Vert.x SQL clients {@code $n}): the settlement time, then one
   * array per column.
   */
  static final String INSERT_SETTLEMENTS = "INSERT INTO settlement (receipt_id, job_id, tenant_id, node_id,"
      + " tx_id, charge_uact, refund_uact, receipt_body, batch_root, proof, signature, epoch, leaf_hash, paid_uakt,"
      + " billed_gpu_nanos, settled_at) SELECT u.*, CAST($ AS TIMESTAMP WITH TIME ZONE) FROM unnest("
      + "CAST($ AS VARCHAR ARRAY), ".repeat(4) + "CAST($ AS BIGINT ARRAY), ".repeat(3)
      + "CAST($ AS VARCHAR ARRAY), ".repeat(4) + "CAST($ AS BIGINT ARRAY), CAST($ AS VARCHAR ARRAY),"
      + " CAST($ AS BIGINT ARRAY), CAST($ AS BIGINT ARRAY)) AS u";

  private static Map<String, Long> summed(Map<String, long[]> deltas) {
    Map<String, Long> out = new LinkedHashMap<>();
    deltas.forEach((account, d) -> out.put(account, d[0]));
    return out;
  }

  /**
   * Applies summed changes per account in one denomination, in the map's order: one batched UPDATE,
   * then INSERTs for accounts new to the ledger.
   */
  private static void applyDeltas(Connection c, Map<String, Long> deltas, String denom) throws SQLException {
    if (deltas.isEmpty()) return;
    List<String> accounts = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("UPDATE balance SET amount = amount + ? WHERE account = ? AND denom = ?")) {
      for (Map.Entry<String, Long> e : deltas.entrySet()) {
        if (e.getValue() == 0) continue;
        ps.setLong(1, e.getValue());
        ps.setString(2, e.getKey());
        ps.setString(3, denom);
        ps.addBatch();
        accounts.add(e.getKey());
      }
      int[] counts = ps.executeBatch();
      // an account new to the ledger; on PostgreSQL another transaction (a settlement lane) may be adding it too
      try (PreparedStatement ins = c.prepareStatement("INSERT INTO balance (account, denom, amount) VALUES (?, ?, ?)"
          + (Database.isH2(c) ? ""
              : " ON CONFLICT (account, denom) DO UPDATE SET amount = balance.amount + EXCLUDED.amount"))) {
        boolean any = false;
        for (int i = 0; i < counts.length; i++) {
          if (counts[i] == 0) {
            ins.setString(1, accounts.get(i));
            ins.setString(2, denom);
            ins.setLong(3, deltas.get(accounts.get(i)));
            ins.addBatch();
            any = true;
          }
        }
        if (any) ins.executeBatch();
      }
    }
  }

  private interface RowReader {
    void read(ResultSet rs) throws SQLException;
  }

  /** Runs {@code sql} whose one parameter is {@code = ANY(?)}, bound to the distinct values as one array. */
  private static void selectAny(Connection c, String sql, List<String> values, RowReader reader) throws SQLException {
    String[] distinct = new java.util.LinkedHashSet<>(values).toArray(new String[0]);
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      Database.setArray(ps, 1, "varchar", distinct);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) reader.read(rs);
      }
    }
  }

  /**
   * The revoked keys of the receipts' nodes (node → keys), read under the settlement barrier: a
   * revocation takes it exclusively, so a settlement after it sees it (ADR 18). Usually none.
   */
  static Map<String, List<String>> revokedKeys(Connection c, List<SignedReceipt> receipts) throws SQLException {
    List<String> nodes = new ArrayList<>();
    for (SignedReceipt sr : receipts) nodes.add(sr.receipt().nodeId());
    Map<String, List<String>> out = new HashMap<>();
    selectAny(c, Database.keyed(c, "t.node_id, t.public_key", "node_key_history", "node_id", REVOKED), nodes,
        rs -> out.computeIfAbsent(rs.getString(1), n -> new ArrayList<>()).add(rs.getString(2)));
    return out;
  }

  /** The condition of {@link #revokedKeys} on {@code node_key_history}. */
  static final String REVOKED = "t.revoked_at_ms IS NOT NULL";

  private static Map<String, Settlement> settlementsByIds(Connection c, List<String> ids) throws SQLException {
    Map<String, Settlement> out = new HashMap<>();
    selectAny(c, Database.keyed(c, "t.receipt_id, t.job_id, t.charge_uact, t.refund_uact, t.tx_id, t.paid_uakt,"
        + " t.billed_gpu_nanos", "settlement", "receipt_id", null), ids, rs -> out.put(rs.getString(1),
            new Settlement(rs.getString(1), rs.getString(2), rs.getLong(3), rs.getLong(4), rs.getLong(5), true, null,
                rs.getLong(6), rs.getObject(7) == null ? null : rs.getLong(7))));
    return out;
  }

  /** Open escrows by job, locked on PostgreSQL, with their recorded placements (V10, V11). */
  private static Map<String, SettlementPlan.OpenEscrow> openEscrows(Connection c, List<String> jobIds) throws SQLException {
    Map<String, SettlementPlan.OpenEscrow> out = new HashMap<>();
    selectAny(c, Database.keyed(c, OPEN_ESCROW_COLUMNS, "escrow", "job_id", "t.state = 'OPEN'") + forUpdate(c), jobIds,
        rs -> {
          long at = rs.getLong(10);
          Long placedAt = rs.wasNull() ? null : at;
          out.put(rs.getString(1), new SettlementPlan.OpenEscrow(new EscrowHold(rs.getString(1), rs.getString(2),
              rs.getLong(3), rs.getLong(4), rs.getString(5), rs.getInt(6), null, rs.getString(7), rs.getLong(8)),
              rs.getString(9), placedAt, rs.getLong(11), rs.getInt(12)));
        });
    return out;
  }

  /** What settlement reads of an open escrow, in {@link #openEscrows}'s order. */
  static final String OPEN_ESCROW_COLUMNS = "t.job_id, t.tenant_id, t.amount_uact, t.price_uact_gpu_hour, t.gpu_class, t.gpus,"
      + " t.akt_price, t.held_uakt, t.nodes, t.placed_at_ms, t.used_gpu_nanos, t.partial_runs";

  /**
   * Records that each job was placed on its node (the scheduler's placement, in its transaction):
   * receipts of the job are then settled only from the nodes it was placed on. Jobs without an
   * escrow, or with one held before placements were recorded, are left alone.
   */
  public static void placedOn(Connection c, List<String> jobIds, List<String> nodeIds) throws SQLException {
    placedOn(c, jobIds, nodeIds, System.currentTimeMillis());
  }

  /**
   * As above, placed at {@code atMs}: a job's first placement bounds the GPU time its receipts can
   * bill (see {@link #usableGpuNanos}); a later placement (after preemption) keeps the first time.
   */
  public static void placedOn(Connection c, List<String> jobIds, List<String> nodeIds, long atMs) throws SQLException {
    // MERGE refuses two source rows for one target row: a job placed on several nodes in one call
    // (preempted and placed again) takes one statement per placement, in order
    List<Map<String, String>> rounds = new ArrayList<>();
    for (int i = 0; i < jobIds.size(); i++) {
      String job = jobIds.get(i);
      String node = nodeIds.get(i);
      if (node.isEmpty() || node.indexOf('\n') >= 0) {
        throw new IllegalArgumentException("node id is empty or contains a newline: " + node);
      }
      int r = 0;
      while (r < rounds.size() && rounds.get(r).containsKey(job) && !rounds.get(r).get(job).equals(node)) r++;
      if (r == rounds.size()) rounds.add(new java.util.LinkedHashMap<>());
      rounds.get(r).put(job, node);
    }
    boolean h2 = Database.isH2(c);
    // PostgreSQL: a plain job_id = ANY(?) (an index scan whatever the plan cached when the table was
    // small; a join on unnest could stay a sequential scan), each row's node looked up in the array
    String node = h2 ? "k.n" : "(CAST(? AS VARCHAR ARRAY))[array_position(CAST(? AS VARCHAR ARRAY), e.job_id)]";
    // each node followed by a newline, appended unless already there (a job placed again on a node it ran on)
    String set = "nodes = CASE WHEN POSITION(CONCAT(CHR(10), " + node + ", CHR(10)) IN CONCAT(CHR(10), e.nodes)) > 0"
        + " THEN e.nodes ELSE CONCAT(e.nodes, " + node + ", CHR(10)) END,"
        + " placed_at_ms = COALESCE(e.placed_at_ms, CAST(? AS BIGINT))";
    String sql = h2
        ? "MERGE INTO escrow e USING unnest(CAST(? AS VARCHAR ARRAY), CAST(? AS VARCHAR ARRAY)) AS k(j, n)"
            + " ON e.job_id = k.j AND e.nodes IS NOT NULL WHEN MATCHED THEN UPDATE SET " + set
        : "UPDATE escrow e SET " + set + " WHERE e.job_id = ANY(?) AND e.nodes IS NOT NULL";
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      for (Map<String, String> round : rounds) {
        java.sql.Array jobs = c.createArrayOf("varchar", round.keySet().toArray(new String[0]));
        java.sql.Array nodes = c.createArrayOf("varchar", round.values().toArray(new String[0]));
        if (h2) {
          ps.setArray(1, jobs);
          ps.setArray(2, nodes);
          ps.setLong(3, atMs);
        } else {
          int i = 1;
          for (int k = 0; k < 2; k++) { // the node appears twice in the SET
            ps.setArray(i++, nodes);
            ps.setArray(i++, jobs);
          }
          ps.setLong(i++, atMs);
          ps.setArray(i, jobs);
        }
        ps.executeUpdate();
      }
    }
  }

  /**
   * Slack on the time since placement, for the clocks of the instance that placed the job and the one
   * that settles it, and for the placement written a moment after the run began.
   */
  static final long USAGE_SLACK_MS = 5_000;

  /** The most GPU time {@code gpus} GPUs can have used between {@code placedAtMs} and {@code nowMs}. */
  static long usableGpuNanos(int gpus, long placedAtMs, long nowMs) {
    long ms = Math.max(0, nowMs - placedAtMs + USAGE_SLACK_MS);
    long nanos = ms > Long.MAX_VALUE / 1_000_000L ? Long.MAX_VALUE : ms * 1_000_000L;
    return nanos > Long.MAX_VALUE / Math.max(1, gpus) ? Long.MAX_VALUE : nanos * Math.max(1, gpus);
  }

  /** Whether {@code node} is among {@code nodes} (each followed by a newline). */
  static boolean recordedOn(String nodes, String node) {
    if (node.isEmpty()) return false;
    String all = "\n" + nodes;
    return all.contains("\n" + node + "\n");
  }

  public static Optional<Settlement> settlementOf(Connection c, String receiptId) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT job_id, charge_uact, refund_uact, tx_id, paid_uakt, billed_gpu_nanos FROM settlement WHERE receipt_id = ?")) {
      ps.setString(1, receiptId);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) return Optional.empty();
        return Optional.of(new Settlement(receiptId, rs.getString(1), rs.getLong(2), rs.getLong(3), rs.getLong(4), true, null,
            rs.getLong(5), rs.getObject(6) == null ? null : rs.getLong(6)));
      }
    }
  }

  /** Records the signature of each signed batch not seen before (the settlements point to it by root). */
  private static void insertBatches(Connection c, Map<String, String[]> batches) throws SQLException {
    if (batches.isEmpty()) return;
    String[] roots = batches.keySet().toArray(new String[0]);
    String[] nodes = new String[roots.length];
    String[] sigs = new String[roots.length];
    for (int i = 0; i < roots.length; i++) {
      nodes[i] = batches.get(roots[i])[0];
      sigs[i] = batches.get(roots[i])[1];
    }
    try (PreparedStatement ps = c.prepareStatement(jdbc(insertBatches(!Database.isH2(c))))) {
      Database.setArray(ps, 1, "varchar", roots);
      Database.setArray(ps, 2, "varchar", nodes);
      Database.setArray(ps, 3, "varchar", sigs);
      ps.executeUpdate();
    }
  }

  /**
   * The settlement rows of a job, with the stored signed receipt, for the receipts API: in the order
   * they were settled, runs settled in one batch by attempt (a receipt id is {@code <jobId>/<attempt>}).
   */
  /** The tenant a job's settled runs were charged to; empty when none of its runs is settled. */
  public static java.util.Optional<String> tenantOfSettledJob(Connection c, String jobId) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT tenant_id FROM settlement WHERE job_id = ? FETCH FIRST 1 ROWS ONLY")) {
      ps.setString(1, jobId);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? java.util.Optional.of(rs.getString(1)) : java.util.Optional.empty();
      }
    }
  }

  public static List<Map<String, Object>> settlementsOfJob(Connection c, String jobId) throws SQLException {
    List<Map<String, Object>> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT s.receipt_id, s.node_id, s.tx_id, s.charge_uact, s.refund_uact, s.receipt_body, s.batch_root, s.proof,"
            + " COALESCE(s.signature, b.signature), s.settled_at, s.paid_uakt, s.billed_gpu_nanos FROM settlement s"
            + " LEFT JOIN receipt_batch b ON b.batch_root = s.batch_root WHERE s.job_id = ?"
            + " ORDER BY s.settled_at, s.tx_id, LENGTH(s.receipt_id), s.receipt_id")) {
      ps.setString(1, jobId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          Map<String, Object> m = new LinkedHashMap<>();
          m.put("receiptId", rs.getString(1));
          m.put("nodeId", rs.getString(2));
          m.put("txId", rs.getLong(3));
          m.put("chargeUact", rs.getLong(4));
          m.put("refundUact", rs.getLong(5));
          m.put("receiptBody", rs.getString(6));
          m.put("batchRoot", rs.getString(7));
          m.put("proof", encodeProof(decodeProof(rs.getString(8)))); // stored compact, shown as L:/R: steps
          m.put("signature", rs.getString(9));
          m.put("settledAt", rs.getTimestamp(10).toInstant().toString());
          m.put("paidUakt", rs.getLong(11));
          long billed = rs.getLong(12);
          // present only when less was billed than the receipt claims (see usableGpuNanos)
          if (!rs.wasNull()) m.put("billedDeviceNanos", billed);
          out.add(m);
        }
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- epochs

  /**
   * A closed accounting epoch (bme-spec 16.1): jobs settled and ACT charged; ACT minted and burned;
   * AKT taken in by mints ({@code aktIn}), paid out by redemptions ({@code aktOut}) and newly minted
   * by them ({@code aktFresh}, inflation); mint fees; {@code burnMintRatio = aktIn / aktOut} (null while
   * no AKT was paid out); the Merkle root over its settlements.
   */
  public record EpochClose(long epoch, long epochSeconds, long startsAtMs, long endsAtMs, long receipts, long chargedUact,
      long actMintedUact, long aktInUakt, long aktOutUakt, String burnMintRatio, String merkleRoot, long actBurnedUact,
      long aktFreshUakt, long feesUact) {}

  /** Root of an epoch without settlements: SHA-256 of nothing (the empty tree of RFC 6962). */
  static final String EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

  /**
   * Closes every epoch that has ended (before {@code nowMs}), had settlements or executed mints or
   * payouts, and is not closed yet:
   * totals, the burned-vs-minted ratio, and the Merkle root over its settlements in receipt-id order.
   */
  public static List<EpochClose> closeEpochs(Connection c, long nowMs, long epochSeconds) throws SQLException {
    settlementBarrier(c); // no settlement of an ended epoch is still in flight
    return closeEndedEpochs(c, nowMs, epochSeconds);
  }

  /**
   * As {@link #closeEpochs}, without taking the settlement barrier: for a caller that took it (in a
   * transaction of its own, committed) after {@code nowMs}. Once it has been held, every settlement of
   * an epoch ended by {@code nowMs} has committed, and a settlement that starts later reads its time
   * after it, so files into a later epoch: the close can read the ended epochs while settlements go on.
   */
  public static List<EpochClose> closeEndedEpochs(Connection c, long nowMs, long epochSeconds) throws SQLException {
    long current = Math.floorDiv(nowMs, epochSeconds * 1000);
    try (PreparedStatement ps = c.prepareStatement(EPOCH_CLOSE_LOCK); ResultSet rs = ps.executeQuery()) {
      rs.next();
    }
    long lastEnd;
    try (PreparedStatement ps = c.prepareStatement(LAST_EPOCH_END); ResultSet rs = ps.executeQuery()) {
      rs.next();
      lastEnd = rs.getLong(1);
    }
    java.util.TreeSet<Long> open = new java.util.TreeSet<>();
    try (PreparedStatement ps = c.prepareStatement(jdbc(EPOCHS_WITH_SETTLEMENTS))) {
      ps.setLong(1, firstUnclosedEpoch(lastEnd, epochSeconds));
      ps.setLong(2, current);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) open.add(rs.getLong(1));
      }
    }
    // an epoch with mints or payouts but no settlement closes too, so that its flows count in the totals
    try (PreparedStatement ps = c.prepareStatement(jdbc(BME_FLOW_TIMES))) {
      ps.setLong(1, lastEnd);
      ps.setLong(2, current * epochSeconds * 1000);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) open.add(Math.floorDiv(rs.getLong(1), epochSeconds * 1000));
      }
    }
    List<EpochClose> closed = new ArrayList<>();
    for (long epoch : open) {
      // the leaves in receipt-id order, a page of chunks at a time: what the close holds in memory is
      // one page and the chunks' roots, whatever the epoch's size
      List<String> roots = new ArrayList<>();
      long receipts = 0;
      long charged = 0;
      String after = "";
      try (PreparedStatement page = c.prepareStatement(jdbc(EPOCH_LEAVES));
          PreparedStatement insert = c.prepareStatement(jdbc(INSERT_EPOCH_CHUNK))) {
        while (true) {
          List<byte[]> leaves = new ArrayList<>(EpochChunks.PAGE);
          List<String> receiptIds = new ArrayList<>(EpochChunks.PAGE);
          page.setLong(1, epoch);
          page.setString(2, after);
          page.setInt(3, EpochChunks.PAGE);
          try (ResultSet rs = page.executeQuery()) {
            while (rs.next()) {
              leaves.add(HEX.parseHex(rs.getString(1)));
              charged += rs.getLong(2);
              receiptIds.add(rs.getString(3));
            }
          }
          if (leaves.isEmpty()) break;
          for (EpochChunks.Chunk k : EpochChunks.ofPage(roots.size(), receiptIds, leaves)) {
            Object[] values = epochChunkRow(epoch, k);
            for (int i = 0; i < values.length; i++) insert.setObject(i + 1, values[i]);
            insert.addBatch();
            roots.add(k.root());
          }
          insert.executeBatch();
          receipts += leaves.size();
          after = receiptIds.get(receiptIds.size() - 1);
          if (leaves.size() < EpochChunks.PAGE) break;
        }
      }
      long start = epoch * epochSeconds * 1000;
      long end = start + epochSeconds * 1000;
      EpochClose e = epochClose(epoch, epochSeconds, roots, receipts, charged, flows(c, start, end));
      try (PreparedStatement ps = c.prepareStatement(jdbc(INSERT_EPOCH_CLOSE))) {
        Object[] values = epochCloseRow(e, nowMs);
        for (int i = 0; i < values.length; i++) ps.setObject(i + 1, values[i]);
        ps.executeUpdate();
      }
      closed.add(e);
    }
    return closed;
  }

  /** SQL with {@code $} markers (shared with the Vert.x SQL client adapter) for JDBC's {@code ?}. */
  static String jdbc(String sql) {
    return sql.replace("$", "?");
  }

  /**
   * Epochs from the first one not closed yet (bound first, {@link #firstUnclosedEpoch}) to before the
   * current one (bound second) with settlements and not closed yet. The lower bound keeps the periodic
   * close from reading the index entries of every settlement ever made: with nothing to close, it reads
   * none (on PostgreSQL the unbounded form took ~200 ms every 10 s at 1,000,000 settlements).
   */
  static final String EPOCHS_WITH_SETTLEMENTS = "SELECT DISTINCT s.epoch FROM settlement s WHERE s.epoch >= $"
      + " AND s.epoch < $ AND NOT EXISTS (SELECT 1 FROM epoch_close e WHERE e.epoch = s.epoch) ORDER BY s.epoch";
  static final String LAST_EPOCH_END = "SELECT COALESCE(MAX(ends_at_ms), 0) FROM epoch_close";
  /**
   * The first statement of a close's transaction (V17): a second closer of the same ledger waits for
   * the first to commit, then reads the epochs it closed as closed, instead of closing them again and
   * failing on their keys.
   */
  static final String EPOCH_CLOSE_LOCK = "SELECT id FROM epoch_close_lock WHERE id = 1 FOR UPDATE";

  /**
   * The first epoch that can hold settlements not closed yet, from the end of the last closed epoch:
   * epochs close in order, all ended ones at once behind the settlement barrier, and a settlement files
   * into the epoch of a time read after it holds the barrier, so none lands in an epoch before that end.
   */
  static long firstUnclosedEpoch(long lastEndMs, long epochSeconds) {
    return Math.floorDiv(lastEndMs, epochSeconds * 1000);
  }
  /** When BME requests executed in [since, before): their epochs close too. */
  static final String BME_FLOW_TIMES = "SELECT DISTINCT decided_at_ms FROM bme_request WHERE state = 'EXECUTED'"
      + " AND decided_at_ms >= $ AND decided_at_ms < $";
  /**
   * A page of an epoch's leaves in receipt-id order, with each settlement's charge and receipt id: the
   * epoch, the last receipt id of the previous page ({@code ''} first), the page's size.
   */
  static final String EPOCH_LEAVES = "SELECT leaf_hash, charge_uact, receipt_id FROM settlement WHERE epoch = $"
      // ordered by the index's columns, epoch first (one value here): H2 then reads the page off the
      // index instead of sorting the whole epoch for every page
      + " AND receipt_id > $ ORDER BY epoch, receipt_id LIMIT $";
  /** One chunk of a closing epoch's leaves (V14, {@link EpochChunks}). */
  static final String INSERT_EPOCH_CHUNK = "INSERT INTO epoch_chunk (epoch, chunk, first_receipt_id, leaves, root)"
      + " VALUES ($, $, $, $, $)";

  /** The values of {@link #INSERT_EPOCH_CHUNK}, in order. */
  static Object[] epochChunkRow(long epoch, EpochChunks.Chunk k) {
    return new Object[] {epoch, k.chunk(), k.firstReceiptId(), k.leaves(), k.root()};
  }
  static final String INSERT_EPOCH_CLOSE = "INSERT INTO epoch_close (epoch, epoch_seconds, starts_at_ms, ends_at_ms,"
      + " receipts, charged_uact, act_minted_uact, akt_in_uakt, akt_out_uakt, burn_mint_ratio, merkle_root, closed_at_ms,"
      + " act_burned_uact, akt_fresh_uakt, fees_uact) VALUES ($, $, $, $, $, $, $, $, $, $, $, $, $, $, $)";
  /** Mint and redemption postings on the issuance, vault and engine accounts in [start, end), per kind and account. */
  static final String FLOW_POSTINGS = "SELECT t.kind, p.account, p.denom, SUM(p.amount) FROM posting p"
      + " JOIN ledger_tx t ON t.id = p.tx_id WHERE t.kind IN ('bme.mint', 'bme.redeem') AND t.created_at >= $"
      + " AND t.created_at < $ AND p.account IN ($, $, $, $) GROUP BY t.kind, p.account, p.denom";
  /** AKT of queued mints (ADR 8) executed in [start, end). */
  static final String FLOW_QUEUED_MINTS = "SELECT COALESCE(SUM(r.amount), 0) FROM bme_request r"
      + " JOIN ledger_tx t ON t.id = r.tx_id WHERE r.direction = 'AKT_TO_ACT' AND r.state = 'EXECUTED'"
      + " AND t.created_at >= $ AND t.created_at < $";
  /** AKT paid to providers by redemptions in [start, end). */
  static final String FLOW_PAID_OUT = "SELECT COALESCE(SUM(p.amount), 0) FROM posting p"
      + " JOIN ledger_tx t ON t.id = p.tx_id WHERE t.kind = 'bme.redeem' AND t.created_at >= $ AND t.created_at < $"
      + " AND p.denom = 'uakt' AND p.account LIKE 'provider:%'";
  /** The accounts {@link #FLOW_POSTINGS} reads, in its order. */
  static final List<String> FLOW_ACCOUNTS = List.of(Accounts.ACT_ISSUANCE, Accounts.VAULT, Accounts.AKT_ISSUANCE, Accounts.ENGINE);

  /**
   * An epoch's totals and Merkle root, from the roots of the chunks of its leaves (receipt-id order,
   * {@link EpochChunks}: the root over the chunks' roots is the root over all leaves), the number of leaves,
   * charges and BME flows (see {@link #flows}).
   */
  static EpochClose epochClose(long epoch, long epochSeconds, List<String> chunkRoots, long receipts, long charged,
      long[] mint) {
    long start = epoch * epochSeconds * 1000;
    long end = start + epochSeconds * 1000;
    String ratio = mint[2] == 0 ? null
        : io.anneal.billing.bme.Dec.fromInt(mint[1]).quo(io.anneal.billing.bme.Dec.fromInt(mint[2])).toString();
    // an epoch of BME flows only has no leaves: its root is SHA-256 of nothing (the empty tree of RFC 6962)
    String root = chunkRoots.isEmpty() ? EMPTY_ROOT : EpochChunks.root(chunkRoots);
    return new EpochClose(epoch, epochSeconds, start, end, receipts, charged, mint[0], mint[1], mint[2], ratio,
        root, mint[3], mint[4], mint[5]);
  }

  /** The values of {@link #INSERT_EPOCH_CLOSE}, in order. */
  static Object[] epochCloseRow(EpochClose e, long nowMs) {
    return new Object[] {e.epoch(), e.epochSeconds(), e.startsAtMs(), e.endsAtMs(), e.receipts(), e.chargedUact(),
        e.actMintedUact(), e.aktInUakt(), e.aktOutUakt(), e.burnMintRatio(), e.merkleRoot(), nowMs, e.actBurnedUact(),
        e.aktFreshUakt(), e.feesUact()};
  }

  /** Adds one row of {@link #FLOW_POSTINGS} (kind, account, summed amount) to the flows. */
  static void addFlow(long[] out, String kind, String account, long sum) {
    boolean mint = kind.equals("bme.mint");
    if (mint && account.equals(Accounts.ACT_ISSUANCE)) out[0] = -sum; // ACT created
    if (mint && account.equals(Accounts.VAULT)) out[1] = sum; // immediate mints (depositAndMint) move AKT here
    if (mint && account.equals(Accounts.ENGINE)) out[5] = sum; // the spread
    if (!mint && account.equals(Accounts.ACT_ISSUANCE)) out[3] = sum; // ACT destroyed
    if (!mint && account.equals(Accounts.AKT_ISSUANCE)) out[4] = -sum; // AKT created
  }

  /**
   * {ACT minted, AKT taken in by mints, AKT paid out by redemptions, ACT burned, AKT newly minted, mint
   * fees} recorded in [start, end).
   */
  private static long[] flows(Connection c, long startMs, long endMs) throws SQLException {
    long[] out = new long[6];
    try (PreparedStatement ps = c.prepareStatement(jdbc(FLOW_POSTINGS))) {
      ps.setTimestamp(1, new java.sql.Timestamp(startMs));
      ps.setTimestamp(2, new java.sql.Timestamp(endMs));
      for (int i = 0; i < FLOW_ACCOUNTS.size(); i++) ps.setString(3 + i, FLOW_ACCOUNTS.get(i));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) addFlow(out, rs.getString(1), rs.getString(2), rs.getLong(4));
      }
    }
    // queued mints (ADR 8) moved their AKT to the vault at request: count it when the mint executes
    out[1] += sumBetween(c, FLOW_QUEUED_MINTS, startMs, endMs);
    out[2] = sumBetween(c, FLOW_PAID_OUT, startMs, endMs); // AKT paid to providers by redemptions (bme-spec 16.1 aktOut)
    return out;
  }

  private static long sumBetween(Connection c, String sql, long startMs, long endMs) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(jdbc(sql))) {
      ps.setTimestamp(1, new java.sql.Timestamp(startMs));
      ps.setTimestamp(2, new java.sql.Timestamp(endMs));
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  /** Closed epochs, newest first, at most {@code limit}. */
  public static List<EpochClose> closedEpochs(Connection c, int limit) throws SQLException {
    return closedEpochsSince(c, Long.MIN_VALUE, limit);
  }

  private static List<EpochClose> closedEpochsSince(Connection c, long sinceMs, int limit) throws SQLException {
    return epochCloses(c, "starts_at_ms >= ? ORDER BY epoch DESC", sinceMs, limit);
  }

  /** The epochs that closed ending after {@code afterEndMs}, oldest first, at most {@code limit} (for a cursor). */
  public static List<EpochClose> epochsEndingAfter(Connection c, long afterEndMs, int limit) throws SQLException {
    return epochCloses(c, "ends_at_ms > ? ORDER BY ends_at_ms", afterEndMs, limit);
  }

  private static List<EpochClose> epochCloses(Connection c, String where, long bound, int limit) throws SQLException {
    List<EpochClose> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT epoch, epoch_seconds, starts_at_ms, ends_at_ms, receipts,"
        + " charged_uact, act_minted_uact, akt_in_uakt, akt_out_uakt, burn_mint_ratio, merkle_root, act_burned_uact,"
        + " akt_fresh_uakt, fees_uact FROM epoch_close WHERE " + where)) {
      ps.setLong(1, bound);
      ps.setMaxRows(limit);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(new EpochClose(rs.getLong(1), rs.getLong(2), rs.getLong(3), rs.getLong(4), rs.getLong(5), rs.getLong(6),
              rs.getLong(7), rs.getLong(8), rs.getLong(9), rs.getString(10), rs.getString(11), rs.getLong(12),
              rs.getLong(13), rs.getLong(14)));
        }
      }
    }
    return out;
  }

  /** One ISO week (UTC, from Monday 00:00) of closed epochs, summed (bme-spec 16.1's weekly view). */
  public record EpochWeek(String week, long startsAtMs, long endsAtMs, int epochs, long receipts, long chargedUact,
      long actMintedUact, long actBurnedUact, long aktInUakt, long aktOutUakt, long aktFreshUakt, long feesUact,
      long netBurnUakt, String burnMintRatio) {}

  /** The last {@code weeks} ISO weeks up to {@code nowMs}, newest first; weeks without a closed epoch are left out. */
  public static List<EpochWeek> epochWeeks(Connection c, int weeks, long nowMs) throws SQLException {
    java.time.LocalDate monday = java.time.Instant.ofEpochMilli(nowMs).atZone(java.time.ZoneOffset.UTC).toLocalDate()
        .with(java.time.temporal.TemporalAdjusters.previousOrSame(java.time.DayOfWeek.MONDAY));
    long since = monday.minusWeeks(weeks - 1L).atStartOfDay(java.time.ZoneOffset.UTC).toInstant().toEpochMilli();
    Map<java.time.LocalDate, long[]> sums = new java.util.TreeMap<>(java.util.Comparator.reverseOrder());
    for (EpochClose e : closedEpochsSince(c, since, Integer.MAX_VALUE)) {
      java.time.LocalDate w = java.time.Instant.ofEpochMilli(e.startsAtMs()).atZone(java.time.ZoneOffset.UTC).toLocalDate()
          .with(java.time.temporal.TemporalAdjusters.previousOrSame(java.time.DayOfWeek.MONDAY));
      long[] v = sums.computeIfAbsent(w, k -> new long[9]);
      v[0]++;
      v[1] += e.receipts();
      v[2] += e.chargedUact();
      v[3] += e.actMintedUact();
      v[4] += e.actBurnedUact();
      v[5] += e.aktInUakt();
      v[6] += e.aktOutUakt();
      v[7] += e.aktFreshUakt();
      v[8] += e.feesUact();
    }
    List<EpochWeek> out = new ArrayList<>();
    sums.forEach((w, v) -> {
      long start = w.atStartOfDay(java.time.ZoneOffset.UTC).toInstant().toEpochMilli();
      String ratio = v[6] == 0 ? null
          : io.anneal.billing.bme.Dec.fromInt(v[5]).quo(io.anneal.billing.bme.Dec.fromInt(v[6])).toString();
      String iso = w.get(java.time.temporal.IsoFields.WEEK_BASED_YEAR) + "-W"
          + String.format(java.util.Locale.ROOT, "%02d", w.get(java.time.temporal.IsoFields.WEEK_OF_WEEK_BASED_YEAR));
      out.add(new EpochWeek(iso, start, start + 7L * 86_400_000L, (int) v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8],
          v[5] - v[6], ratio));
    });
    return out;
  }

  /** The closed epoch of a settlement and the receipt's inclusion proof in it, or empty while open. */
  public static Optional<Map<String, Object>> epochProof(Connection c, String receiptId) throws SQLException {
    long epoch;
    String leaf;
    try (PreparedStatement ps = c.prepareStatement("SELECT epoch, leaf_hash FROM settlement WHERE receipt_id = ?")) {
      ps.setString(1, receiptId);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next() || rs.getObject(1) == null) return Optional.empty();
        epoch = rs.getLong(1);
        leaf = rs.getString(2);
      }
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("epoch", epoch);
    out.put("leafHash", leaf);
    try (PreparedStatement ps = c.prepareStatement("SELECT starts_at_ms, ends_at_ms, receipts, charged_uact, act_minted_uact,"
        + " akt_in_uakt, akt_out_uakt, burn_mint_ratio, merkle_root FROM epoch_close WHERE epoch = ?")) {
      ps.setLong(1, epoch);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) {
          out.put("closed", false);
          return Optional.of(out);
        }
        out.put("closed", true);
        out.put("startsAtMs", rs.getLong(1));
        out.put("endsAtMs", rs.getLong(2));
        out.put("receipts", rs.getLong(3));
        out.put("chargedUact", rs.getLong(4));
        out.put("actMintedUact", rs.getLong(5));
        out.put("aktInUakt", rs.getLong(6));
        out.put("aktOutUakt", rs.getLong(7));
        out.put("burnMintRatio", rs.getString(8));
        out.put("merkleRoot", rs.getString(9));
      }
    }
    Optional<Map<String, Object>> fromChunks = proofFromChunks(c, out, epoch, receiptId, leaf);
    return Optional.of(fromChunks.isPresent() ? fromChunks.get() : proofFromAllLeaves(c, out, epoch, receiptId));
  }

  /**
   * The proof from the epoch's chunks (V14): the chunk the receipt's leaf is in (the last one starting
   * at or before it in receipt-id order) and every chunk's root. Empty for an epoch closed before V14,
   * which has no chunks.
   */
  static Optional<Map<String, Object>> proofFromChunks(Connection c, Map<String, Object> out, long epoch, String receiptId,
      String leafHex) throws SQLException {
    int chunk = -1;
    List<byte[]> chunkLeaves = null;
    try (PreparedStatement ps = c.prepareStatement("SELECT chunk, leaves FROM epoch_chunk WHERE epoch = ?"
        + " AND first_receipt_id <= ? ORDER BY epoch DESC, first_receipt_id DESC LIMIT 1")) {
      ps.setLong(1, epoch);
      ps.setString(2, receiptId);
      try (ResultSet rs = ps.executeQuery()) {
        if (rs.next()) {
          chunk = rs.getInt(1);
          chunkLeaves = EpochChunks.leaves(rs.getString(2));
        }
      }
    }
    int local = chunkLeaves == null ? -1 : EpochChunks.indexOf(chunkLeaves, HEX.parseHex(leafHex));
    if (local < 0) return Optional.empty();
    List<byte[]> roots = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT root FROM epoch_chunk WHERE epoch = ? ORDER BY epoch, chunk")) {
      ps.setLong(1, epoch);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) roots.add(HEX.parseHex(rs.getString(1)));
      }
    }
    out.put("index", chunk * EpochChunks.SIZE + local);
    out.put("proof", encodeProof(EpochChunks.proof(chunkLeaves, local, roots, chunk)));
    return Optional.of(out);
  }

  /**
   * The proof as it was computed before V14, from every leaf of the epoch: for epochs closed without
   * chunks, and for tests that compare the two.
   */
  static Map<String, Object> proofFromAllLeaves(Connection c, Map<String, Object> out, long epoch, String receiptId)
      throws SQLException {
    List<byte[]> leaves = new ArrayList<>();
    int index = -1;
    try (PreparedStatement ps = c.prepareStatement("SELECT receipt_id, leaf_hash FROM settlement WHERE epoch = ? ORDER BY receipt_id")) {
      ps.setLong(1, epoch);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          if (rs.getString(1).equals(receiptId)) index = leaves.size();
          leaves.add(HEX.parseHex(rs.getString(2)));
        }
      }
    }
    out.put("index", index);
    out.put("proof", encodeProof(MerkleTree.ofLeafHashes(leaves).proof(index)));
    return out;
  }

  /** Proof steps as text: {@code L:<hex>} or {@code R:<hex>} joined by commas ({@link MerkleTree#formatProof}). */
  public static String encodeProof(List<MerkleTree.Step> proof) {
    return MerkleTree.formatProof(proof);
  }

  /**
   * Proof steps as stored with a settlement: {@code b64:} and, per step, one byte (1 = sibling on the
   * left), one byte of length and the sibling's bytes — about two thirds of the text form.
   */
  static String encodeProofCompact(List<MerkleTree.Step> proof) {
    java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream(proof.size() * 34);
    for (MerkleTree.Step s : proof) {
      b.write(s.siblingOnLeft() ? 1 : 0);
      b.write(s.sibling().length);
      b.writeBytes(s.sibling());
    }
    return "b64:" + Base64.getEncoder().encodeToString(b.toByteArray());
  }

  /** Reads either form: the compact one ({@code b64:…}) or the text one ({@code L:<hex>,R:<hex>,…}). */
  public static List<MerkleTree.Step> decodeProof(String text) {
    List<MerkleTree.Step> out = new ArrayList<>();
    if (text == null || text.isEmpty()) return out;
    if (text.startsWith("b64:")) {
      byte[] b = Base64.getDecoder().decode(text.substring(4));
      for (int i = 0; i < b.length; ) {
        if (i + 2 > b.length || (b[i] != 0 && b[i] != 1) || i + 2 + (b[i + 1] & 0xff) > b.length) {
          throw new IllegalArgumentException("bad compact proof at byte " + i);
        }
        int len = b[i + 1] & 0xff;
        out.add(new MerkleTree.Step(java.util.Arrays.copyOfRange(b, i + 2, i + 2 + len), b[i] == 1));
        i += 2 + len;
      }
      return out;
    }
    return MerkleTree.parseProof(text);
  }

  // ---------------------------------------------------------------- nodes

  /**
   * Registers a node's key on first sight; a different key for a known node is refused (a new key
   * comes only through {@link #rotateNodeKey}, which names the key it replaces).
   */
  public static boolean registerNode(Connection c, String nodeId, String publicKeyB64) throws SQLException {
    return registerNode(c, nodeId, publicKeyB64, System.currentTimeMillis());
  }

  public static boolean registerNode(Connection c, String nodeId, String publicKeyB64, long nowMs) throws SQLException {
    Optional<String> known = nodeKey(c, nodeId);
    if (known.isPresent()) return known.get().equals(publicKeyB64);
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO node_key (node_id, public_key) VALUES (?, ?)")) {
      ps.setString(1, nodeId);
      ps.setString(2, publicKeyB64);
      ps.executeUpdate();
    }
    try (PreparedStatement ps = c.prepareStatement(jdbc(NodeKey.INSERT_HISTORY))) {
      ps.setString(1, nodeId);
      ps.setString(2, publicKeyB64);
      ps.setLong(3, nowMs);
      ps.executeUpdate();
    }
    return true;
  }

  /**
   * Replaces a node's signing key (ADR 18): {@code newKey} becomes the one it signs with, and
   * {@code oldKey}, which must be the current one, is retired (its signatures stay valid) or revoked
   * (refused from now on). Idempotent: asked again once done, it answers {@code DONE} again. With
   * {@code revokeOld} it takes the settlement barrier: run it alone ({@code GroupCommitWriter.submitAlone}).
   */
  public static NodeKey.Rotation rotateNodeKey(Connection c, String nodeId, String oldKey, String newKey, boolean revokeOld,
      java.util.function.LongSupplier clock) throws SQLException {
    if (oldKey.equals(newKey)) throw new IllegalArgumentException("the new key is the current one");
    // a revocation orders itself after the settlements in flight, and before the next ones (they read it);
    // its time is read after them, so that every settlement it follows is no later
    if (revokeOld) settlementBarrier(c);
    long nowMs = clock.getAsLong();
    Optional<String> current;
    try (PreparedStatement ps = c.prepareStatement("SELECT public_key FROM node_key WHERE node_id = ?" + forUpdate(c))) {
      ps.setString(1, nodeId);
      try (ResultSet rs = ps.executeQuery()) {
        current = rs.next() ? Optional.of(rs.getString(1)) : Optional.empty();
      }
    }
    if (current.isEmpty()) return NodeKey.Rotation.UNKNOWN_NODE;
    if (current.get().equals(newKey)) return NodeKey.Rotation.DONE;
    if (!current.get().equals(oldKey)) return NodeKey.Rotation.NOT_CURRENT;
    if (nodeKeys(c, nodeId).stream().anyMatch(k -> k.publicKey().equals(newKey))) return NodeKey.Rotation.KEY_REUSED;
    try (PreparedStatement ps = c.prepareStatement("UPDATE node_key SET public_key = ? WHERE node_id = ?")) {
      ps.setString(1, newKey);
      ps.setString(2, nodeId);
      ps.executeUpdate();
    }
    try (PreparedStatement ps = c.prepareStatement("UPDATE node_key_history SET retired_at_ms = ?"
        + (revokeOld ? ", revoked_at_ms = ?" : "") + " WHERE node_id = ? AND public_key = ?")) {
      int i = 1;
      ps.setLong(i++, nowMs);
      if (revokeOld) ps.setLong(i++, nowMs);
      ps.setString(i++, nodeId);
      ps.setString(i, oldKey);
      ps.executeUpdate();
    }
    try (PreparedStatement ps = c.prepareStatement(jdbc(NodeKey.INSERT_HISTORY))) {
      ps.setString(1, nodeId);
      ps.setString(2, newKey);
      ps.setLong(3, nowMs);
      ps.executeUpdate();
    }
    return NodeKey.Rotation.DONE;
  }

  /**
   * Revokes a retired key of a node: its signatures are refused from now on, by every settlement
   * after this one commits. The key the node signs with now cannot be revoked this way (rotate it
   * away, revoking it, instead). Takes the settlement barrier: run it alone.
   */
  public static NodeKey.Revocation revokeNodeKey(Connection c, String nodeId, String publicKey,
      java.util.function.LongSupplier clock) throws SQLException {
    settlementBarrier(c); // see rotateNodeKey
    long nowMs = clock.getAsLong();
    Optional<NodeKey> key = nodeKeys(c, nodeId).stream().filter(k -> k.publicKey().equals(publicKey)).findFirst();
    if (key.isEmpty()) return NodeKey.Revocation.UNKNOWN_KEY;
    if (key.get().current()) return NodeKey.Revocation.CURRENT;
    if (key.get().revokedAtMs() != null) return NodeKey.Revocation.ALREADY;
    try (PreparedStatement ps = c.prepareStatement("UPDATE node_key_history SET revoked_at_ms = ? WHERE node_id = ?"
        + " AND public_key = ? AND revoked_at_ms IS NULL")) {
      ps.setLong(1, nowMs);
      ps.setString(2, nodeId);
      ps.setString(3, publicKey);
      ps.executeUpdate();
    }
    return NodeKey.Revocation.REVOKED;
  }

  /** Every key a node has had, the current one first, then the newest first. */
  public static List<NodeKey> nodeKeys(Connection c, String nodeId) throws SQLException {
    List<NodeKey> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement(jdbc(NodeKey.SELECT))) {
      ps.setString(1, nodeId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(new NodeKey(rs.getString(1), rs.getString(2), rs.getLong(3), (Long) rs.getObject(4, Long.class),
              (Long) rs.getObject(5, Long.class), rs.getBoolean(6)));
        }
      }
    }
    return out;
  }

  public static Optional<String> nodeKey(Connection c, String nodeId) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT public_key FROM node_key WHERE node_id = ?")) {
      ps.setString(1, nodeId);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? Optional.of(rs.getString(1)) : Optional.empty();
      }
    }
  }

  public static void recordRefusedReceipt(Connection c, String receiptId, String nodeId, String reason) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO refused_receipt (receipt_id, node_id, reason) VALUES (?, ?, ?)")) {
      ps.setString(1, receiptId);
      ps.setString(2, nodeId);
      ps.setString(3, reason);
      ps.executeUpdate();
    }
  }

  /** A receipt refused for who sent it (bad signature, unknown node, not placed on its node), kept for audit. */
  /**
   * A receipt refused for who sent it, kept for audit. {@code settled}: the same receipt id was settled
   * since, sent again valid (after a revoking key rotation the receipts in flight are refused once,
   * then signed again and settled, ADR 18).
   */
  public record RefusedReceipt(long id, String receiptId, String nodeId, String reason, long atMs, boolean settled) {}

  /** The refused receipts, newest first, each with whether its receipt id has been settled since. */
  static final String REFUSED_RECEIPTS = "SELECT r.id, r.receipt_id, r.node_id, r.reason, r.created_at,"
      + " CASE WHEN EXISTS (SELECT 1 FROM settlement s WHERE s.receipt_id = r.receipt_id) THEN 1 ELSE 0 END"
      + " FROM refused_receipt r ORDER BY r.id DESC LIMIT $";

  /** The newest refused receipts first, at most {@code limit}. */
  public static List<RefusedReceipt> refusedReceipts(Connection c, int limit) throws SQLException {
    List<RefusedReceipt> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement(jdbc(REFUSED_RECEIPTS))) {
      ps.setInt(1, limit);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(new RefusedReceipt(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4),
              rs.getTimestamp(5).getTime(), rs.getInt(6) == 1));
        }
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- class prices (bme-spec 16.2)

  /**
   * Records a pricing window's changes, unless the store moved one of their classes since the book they
   * were worked out from ({@code heldFromMs}: each class's latest change there, absent while at its base
   * price): then another instance closed a window meanwhile (cluster mode, a billing role changing hands)
   * and nothing is recorded. Call under the exclusive settlement barrier, which orders the windows of
   * every instance sharing the store. Returns whether the changes were recorded.
   */
  public static boolean recordPrices(Connection c, List<io.anneal.billing.pricing.PriceBook.Change> changes,
      Map<String, Long> heldFromMs) throws SQLException {
    for (var ch : changes) {
      Long stored = latestPriceFromMs(c, ch.gpuClass());
      if (!java.util.Objects.equals(stored, heldFromMs.get(ch.gpuClass()))) return false;
    }
    recordPrices(c, changes);
    return true;
  }

  private static Long latestPriceFromMs(Connection c, String gpuClass) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT MAX(from_ms) FROM class_price WHERE gpu_class = ?")) {
      ps.setString(1, gpuClass);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        long v = rs.getLong(1);
        return rs.wasNull() ? null : v;
      }
    }
  }

  /**
   * The stored price changes a book does not hold yet: of each of its classes, those after its latest
   * change there (all of a class still at its base price). A class's changes are stored in order
   * ({@link #recordPrices(Connection, List, Map)}), so none is missed.
   */
  public static List<io.anneal.billing.pricing.PriceBook.Change> loadPricesAfter(Connection c,
      io.anneal.billing.pricing.PriceBook book) throws SQLException {
    var held = book.latestChanges();
    List<io.anneal.billing.pricing.PriceBook.Change> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT gpu_class, from_ms, uact_per_gpu_second, uact_per_gpu_hour,"
        + " utilization FROM class_price WHERE gpu_class = ? AND from_ms > ? ORDER BY from_ms")) {
      for (String cls : book.base().keySet()) {
        var h = held.get(cls);
        ps.setString(1, cls);
        ps.setLong(2, h == null ? Long.MIN_VALUE : h.fromMs());
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) out.add(priceChange(rs));
        }
      }
    }
    return out;
  }

  private static io.anneal.billing.pricing.PriceBook.Change priceChange(ResultSet rs) throws SQLException {
    String u = rs.getString(5);
    return new io.anneal.billing.pricing.PriceBook.Change(rs.getString(1), rs.getLong(2),
        io.anneal.billing.bme.Dec.parse(rs.getString(3)), rs.getLong(4), u == null ? null : io.anneal.billing.bme.Dec.parse(u));
  }

  /** Stores price changes as they are (tests, and {@link #recordPrices(Connection, List, Map)} once checked). */
  public static void recordPrices(Connection c, List<io.anneal.billing.pricing.PriceBook.Change> changes) throws SQLException {
    if (changes.isEmpty()) return;
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO class_price (gpu_class, from_ms, uact_per_gpu_second,"
        + " uact_per_gpu_hour, utilization) VALUES (?, ?, ?, ?, ?)")) {
      for (var ch : changes) {
        ps.setString(1, ch.gpuClass());
        ps.setLong(2, ch.fromMs());
        ps.setString(3, ch.perGpuSecond().toString());
        ps.setLong(4, ch.perGpuHour());
        ps.setString(5, ch.utilization() == null ? null : ch.utilization().toString());
        ps.addBatch();
      }
      ps.executeBatch();
    }
  }

  public static List<io.anneal.billing.pricing.PriceBook.Change> loadPrices(Connection c) throws SQLException {
    List<io.anneal.billing.pricing.PriceBook.Change> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT gpu_class, from_ms, uact_per_gpu_second, uact_per_gpu_hour,"
        + " utilization FROM class_price ORDER BY gpu_class, from_ms");
        ResultSet rs = ps.executeQuery()) {
      while (rs.next()) out.add(priceChange(rs));
    }
    return out;
  }

  // ---------------------------------------------------------------- BME (first cut)

  /** Funds the vault from the community pool (the seed). Idempotent on {@code ref}. */
  public static boolean fundVault(Connection c, String ref, long uakt) throws SQLException {
    if (uakt <= 0) throw new Refused(LedgerRefusal.INVALID_AMOUNT, "fund amount must be > 0");
    return post(c, "bme.fund", ref, List.of(
        new Posting(Accounts.COMMUNITY_POOL, "uakt", -uakt), new Posting(Accounts.VAULT, "uakt", uakt))).isPresent();
  }

  /**
   * Records an AKT deposit for a tenant and converts it to ACT at once at the oracle price, with
   * the spec's quote arithmetic (mint spread, minimum mint, remint credits). Idempotent on
   * {@code ref}. Refused, with nothing written, when the breaker halts mints. The service queues
   * deposits for mint epochs instead ({@link Mints}); this one-step form seeds ledgers in tests and
   * benchmarks.
   */
  public static MintResult depositAndMint(Connection c, String tenantId, String ref, long uakt, OracleSnapshot oracle,
      BmeParams params) throws SQLException {
    if (uakt <= 0) return MintResult.refused(LedgerRefusal.INVALID_AMOUNT, "deposit must be > 0 uakt");
    if (txIdByRef(c, "deposit:" + ref).isPresent()) {
      return new MintResult(uakt, 0, 0, 0, null, true, null, "deposit already recorded");
    }
    SupplyView s = supply(c);
    try {
      Bme.admit(Status.valueOf(s.status()), Direction.AKT_TO_ACT, oracle);
    } catch (BmeException e) {
      return MintResult.refused(e.code() == io.anneal.billing.bme.BmeError.ORACLE_UNHEALTHY
          ? LedgerRefusal.ORACLE_UNHEALTHY : LedgerRefusal.CIRCUIT_BREAKER, e.getMessage());
    }
    Quote q;
    try {
      q = Bme.quote(Direction.AKT_TO_ACT, BigInteger.valueOf(uakt), oracle, params, null);
    } catch (BmeException e) {
      LedgerRefusal why = switch (e.code()) {
        case MINIMUM_MINT, EPSILON -> LedgerRefusal.BELOW_MINIMUM_MINT;
        case ORACLE_UNHEALTHY, ZERO_PRICE -> LedgerRefusal.ORACLE_UNHEALTHY;
        default -> LedgerRefusal.INVALID_AMOUNT;
      };
      return MintResult.refused(why, e.getMessage());
    }
    String tenant = Accounts.tenant(tenantId);
    long mint = q.mintAmount().longValueExact();
    long spread = q.spreadAmount().longValueExact();
    long user = q.userAmount().longValueExact();
    post(c, "deposit", "deposit:" + ref, List.of(
        new Posting(Accounts.EXTERNAL_CHAIN, "uakt", -uakt), new Posting(tenant, "uakt", uakt)));
    List<Posting> mintPostings = new ArrayList<>();
    mintPostings.add(new Posting(tenant, "uakt", -uakt));
    mintPostings.add(new Posting(Accounts.VAULT, "uakt", uakt));
    mintPostings.add(new Posting(Accounts.ACT_ISSUANCE, "uact", -mint));
    if (user > 0) mintPostings.add(new Posting(tenant, "uact", user));
    if (spread > 0) mintPostings.add(new Posting(Accounts.ENGINE, "uact", spread));
    post(c, "bme.mint", "mint:" + ref, mintPostings);
    try (PreparedStatement ps = c.prepareStatement(
        "UPDATE bme_state SET remint_credits = remint_credits + ?, total_minted_uact = total_minted_uact + ? WHERE id = 1")) {
      ps.setLong(1, uakt);
      ps.setLong(2, mint);
      ps.executeUpdate();
    }
    updateBreaker(c, oracle, params);
    return new MintResult(uakt, mint, spread, user, q.swapRate().toString(), false, null, null);
  }

  /** Re-evaluates the circuit breaker from the ledger (bme-spec 7.1) and stores a change. */
  public static StatusUpdate updateBreaker(Connection c, OracleSnapshot oracle, BmeParams params) throws SQLException {
    SupplyView s = supply(c);
    BreakerState stored = new BreakerState(Status.valueOf(s.status()), Status.valueOf(s.previousStatus()), s.epochHeightDiff());
    StatusUpdate u = Bme.nextStatus(stored, BigInteger.valueOf(s.vaultAkt()), BigInteger.valueOf(s.pendingAkt()),
        BigInteger.valueOf(s.actSupply()), oracle, params);
    if (u.changed()) {
      try (PreparedStatement ps = c.prepareStatement(
          "UPDATE bme_state SET status = ?, previous_status = ?, epoch_height_diff = ? WHERE id = 1")) {
        ps.setString(1, u.state().status().name());
        ps.setString(2, u.state().previousStatus().name());
        ps.setLong(3, u.state().epochHeightDiff());
        ps.executeUpdate();
      }
    }
    return u;
  }

  public static SupplyView supply(Connection c) throws SQLException {
    long vault = balance(c, Accounts.VAULT, "uakt");
    long actSupply = -balance(c, Accounts.ACT_ISSUANCE, "uact");
    long engine = balance(c, Accounts.ENGINE, "uact");
    long pendingAkt = Mints.pendingUakt(c);
    long escrowed;
    // open escrow is what the tenants' escrow accounts hold: one balance row per tenant, no scan of escrows
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT COALESCE(SUM(amount), 0) FROM balance WHERE denom = 'uact' AND account LIKE 'escrow:%'");
        ResultSet rs = ps.executeQuery()) {
      rs.next();
      escrowed = rs.getLong(1);
    }
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT remint_credits, total_minted_uact, total_minted_uakt, total_burned_uact, status, previous_status,"
            + " epoch_height_diff FROM bme_state WHERE id = 1");
        ResultSet rs = ps.executeQuery()) {
      rs.next();
      return new SupplyView(vault, actSupply, engine, rs.getLong(1), rs.getLong(2), rs.getLong(3), rs.getLong(4),
          rs.getString(5), rs.getString(6), rs.getLong(7), escrowed, pendingAkt);
    }
  }

  /** Ensures the balance rows of a new tenant exist (so that debits can be checked by UPDATE). */
  public static void openTenantAccounts(Connection c, String tenantId) throws SQLException {
    for (String acct : List.of(Accounts.tenant(tenantId), Accounts.escrow(tenantId))) {
      for (String denom : List.of("uact", "uakt")) {
        try (PreparedStatement ps = c.prepareStatement(
            "INSERT INTO balance (account, denom, amount) SELECT ?, ?, 0 WHERE NOT EXISTS"
                + " (SELECT 1 FROM balance WHERE account = ? AND denom = ?)")) {
          ps.setString(1, acct);
          ps.setString(2, denom);
          ps.setString(3, acct);
          ps.setString(4, denom);
          ps.executeUpdate();
        }
      }
    }
  }
}
