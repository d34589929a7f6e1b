package io.anneal.billing.ledger;

import io.anneal.billing.bme.Bme;
import io.anneal.billing.bme.BmeError;
import io.anneal.billing.bme.BmeException;
import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.Direction;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.bme.Quote;
import io.anneal.billing.bme.RemintSplit;
import io.anneal.billing.bme.Status;
import java.math.BigInteger;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Provider payouts on the SQL ledger: ACT→AKT redemptions with bme-spec's rules. A request moves the
 * provider's ACT to the engine (8.1; allowed while HALT_CR, refused while HALT_ORACLE); each
 * redemption epoch executes queued requests in owner order within the per-tick budget (9.2), pays
 * remint credits before minting fresh AKT (10.3), retries retriable failures and cancels fatal ones
 * or after {@code maxPendingAttempts} with the ACT returned (10.4). Every request records which
 * settlement journal entries its ACT came from, so each AKT paid traces back to receipts (16.1).
 */
public final class Redemptions {
  private Redemptions() {}

  public record Requested(long id, long uact, boolean duplicate, LedgerRefusal refusal, String detail) {
    static Requested refused(LedgerRefusal why, String detail) {
      return new Requested(0, 0, false, why, detail);
    }
  }

  /** One executed or cancelled request of an epoch. */
  public record Outcome(long id, String owner, long uact, String state, long paidUakt, long remintIssuedUakt,
      long freshUakt, String swapRate, String reason) {}

  /** Queues a payout of {@code uact} of the provider's ACT. Idempotent on {@code ref}; a refusal writes nothing. */
  public static Requested request(Connection c, String nodeId, long uact, String ref, OracleSnapshot oracle, long nowMs)
      throws SQLException {
    if (uact <= 0) return Requested.refused(LedgerRefusal.INVALID_AMOUNT, "payout must be > 0 uact");
    // the receipts it redeems are named by journal entry id: none below the latest may still be in flight
    SqlLedger.settlementBarrier(c);
    try (PreparedStatement ps = c.prepareStatement("SELECT id, amount FROM bme_request WHERE ref = ?")) {
      ps.setString(1, ref);
      try (ResultSet rs = ps.executeQuery()) {
        if (rs.next()) return new Requested(rs.getLong(1), rs.getLong(2), true, null, null);
      }
    }
    SupplyView s = SqlLedger.supply(c);
    try {
      Bme.admit(Status.valueOf(s.status()), Direction.ACT_TO_AKT, oracle);
    } catch (BmeException e) {
      return Requested.refused(e.code() == BmeError.CIRCUIT_BREAKER ? LedgerRefusal.CIRCUIT_BREAKER
          : LedgerRefusal.ORACLE_UNHEALTHY, e.getMessage());
    }
    String owner = Accounts.provider(nodeId);
    long holds = SqlLedger.balance(c, owner, "uact");
    if (holds < uact) {
      return Requested.refused(LedgerRefusal.INSUFFICIENT_FUNDS, owner + " holds " + holds + " uact, asked " + uact);
    }
    long after = coveredThrough(c, owner, "state <> 'CANCELED'"); // provisional until it executes
    long through = latestSettlementTx(c, nodeId);
    SqlLedger.post(c, "bme.redeem-request", "redeem-request:" + ref,
        List.of(new Posting(owner, "uact", -uact), new Posting(Accounts.ENGINE, "uact", uact)));
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO bme_request (ref, owner, direction, amount, state, attempts,"
        + " requested_at_ms, covers_tx_after, covers_tx_through) VALUES (?, ?, 'ACT_TO_AKT', ?, 'PENDING', 0, ?, ?, ?)",
        new String[] {"id"})) {
      ps.setString(1, ref);
      ps.setString(2, owner);
      ps.setLong(3, uact);
      ps.setLong(4, nowMs);
      ps.setLong(5, after);
      ps.setLong(6, Math.max(after, through));
      ps.executeUpdate();
      try (ResultSet rs = ps.getGeneratedKeys()) {
        rs.next();
        return new Requested(rs.getLong(1), uact, false, null, null);
      }
    }
  }

  /**
   * Automatic payouts: queues the whole ACT balance of every provider holding at least
   * {@code minUact} that has no payout pending. Returns how many were queued.
   */
  public static int requestAll(Connection c, long minUact, OracleSnapshot oracle, long nowMs) throws SQLException {
    SqlLedger.settlementBarrier(c); // the balances read below are then those of the journal entries named
    List<String[]> due = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT b.account, b.amount FROM balance b WHERE b.account LIKE 'provider:%'"
        + " AND b.denom = 'uact' AND b.amount >= ? AND NOT EXISTS (SELECT 1 FROM bme_request r WHERE r.owner = b.account"
        + " AND r.state = 'PENDING') ORDER BY b.account")) {
      ps.setLong(1, Math.max(1, minUact));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) due.add(new String[] {rs.getString(1), Long.toString(rs.getLong(2))});
      }
    }
    int queued = 0;
    for (String[] d : due) {
      String node = d[0].substring("provider:".length());
      Requested r = request(c, node, Long.parseLong(d[1]), "auto:" + node + ":" + nowMs, oracle, nowMs);
      if (r.refusal() == null && !r.duplicate()) queued++;
    }
    return queued;
  }

  /**
   * A redemption epoch (9.1, 9.2): runs queued requests in owner order within the budget. The
   * caller re-evaluates the breaker afterwards, as the tick does.
   */
  public static List<Outcome> runEpoch(Connection c, OracleSnapshot oracle, BmeParams params, long nowMs)
      throws SQLException {
    List<long[]> queue = new ArrayList<>(); // id, amount, attempts
    List<String> owners = new ArrayList<>();
    SqlLedger.pendingInSpecOrder(c, "ACT_TO_AKT", params.options().fifoQueue(),
        (int) Math.min(Integer.MAX_VALUE, params.maxEndblockerRecords()), queue, owners);
    List<Outcome> out = new ArrayList<>();
    if (queue.isEmpty()) return out;
    // the supply once per epoch, then kept current here (each execution changes it)
    SupplyView s = SqlLedger.supply(c);
    long actSupply = s.actSupply();
    long credits = s.remintCredits();
    long vault = s.vaultAkt();
    for (int i = 0; i < queue.size(); i++) {
      long id = queue.get(i)[0];
      long amount = queue.get(i)[1];
      int attempts = (int) queue.get(i)[2];
      String owner = owners.get(i);
      Quote q;
      try {
        q = Bme.quote(Direction.ACT_TO_AKT, BigInteger.valueOf(amount), oracle, params, BigInteger.valueOf(actSupply));
      } catch (BmeException e) {
        fail(c, id, owner, amount, attempts, e.code(), params, nowMs).ifPresent(out::add);
        continue;
      }
      RemintSplit split = Bme.remintSplit(q.mintAmount(), q.spreadAmount(), BigInteger.valueOf(credits));
      long issued = split.remintIssued().longValueExact();
      long fresh = split.newlyMintedAkt().longValueExact();
      long user = split.userAmount().longValueExact();
      if (vault + fresh - user < 0) {
        fail(c, id, owner, amount, attempts, BmeError.INSUFFICIENT_FUNDS, params, nowMs).ifPresent(out::add);
        continue;
      }
      actSupply -= amount;
      credits -= issued;
      vault += fresh - user;
      List<Posting> postings = new ArrayList<>();
      postings.add(new Posting(Accounts.ENGINE, "uact", -amount));
      postings.add(new Posting(Accounts.ACT_ISSUANCE, "uact", amount));
      if (fresh > 0) postings.add(new Posting(Accounts.AKT_ISSUANCE, "uakt", -fresh));
      if (fresh - user != 0) postings.add(new Posting(Accounts.VAULT, "uakt", fresh - user));
      if (user > 0) postings.add(new Posting(owner, "uakt", user));
      long tx = SqlLedger.post(c, "bme.redeem", "redeem:" + id, postings).orElseThrow();
      try (PreparedStatement ps = c.prepareStatement("UPDATE bme_state SET remint_credits = remint_credits - ?,"
          + " total_burned_uact = total_burned_uact + ?, total_minted_uakt = total_minted_uakt + ? WHERE id = 1")) {
        ps.setLong(1, issued);
        ps.setLong(2, amount);
        ps.setLong(3, fresh);
        ps.executeUpdate();
      }
      // the ACT it burns, by amount: the provider's oldest income no executed payout burned yet
      // (ADR 8 addendum 2); a cancelled payout burned nothing, so its income falls to this one
      String node = owner.substring("provider:".length());
      PayoutFifo.Cursor from = fifoCursor(c, owner);
      PayoutFifo.Burn burn = PayoutFifo.burn(new Income(c, node, from.tx()), from, amount);
      // its range of journal entries, for lookups: the entries its first through its last item are in
      long after = burn.start() == null ? Math.max(0, from.tx() - 1) : burn.start().tx() - 1;
      long through = burn.end() == null ? after : burn.end().tx();
      try (PreparedStatement ps = c.prepareStatement("UPDATE bme_request SET state = 'EXECUTED', decided_at_ms = ?,"
          + " swap_rate = ?, paid_uakt = ?, remint_issued_uakt = ?, fresh_uakt = ?, tx_id = ?, covers_tx_after = ?,"
          + " covers_tx_through = ?, fifo_start_tx = ?, fifo_start_item = ?, fifo_start_used = ?, fifo_end_tx = ?,"
          + " fifo_end_item = ?, fifo_end_used = ?, fifo_income_uact = ?, fifo_receipts = ?, fifo_receipts_uact = ?"
          + " WHERE id = ?")) {
        ps.setLong(1, nowMs);
        ps.setString(2, q.swapRate().toString());
        ps.setLong(3, user);
        ps.setLong(4, issued);
        ps.setLong(5, fresh);
        ps.setLong(6, tx);
        ps.setLong(7, after);
        ps.setLong(8, through);
        setCursor(ps, 9, burn.start());
        setCursor(ps, 12, burn.end());
        ps.setLong(15, burn.fromIncome());
        ps.setLong(16, burn.receipts());
        ps.setLong(17, burn.receiptsUact());
        ps.setLong(18, id);
        ps.executeUpdate();
      }
      out.add(new Outcome(id, owner, amount, "EXECUTED", user, issued, fresh, q.swapRate().toString(), null));
    }
    return out; // the caller's tick re-evaluates the breaker (bme-spec 9.1)
  }

  private static void setCursor(PreparedStatement ps, int at, PayoutFifo.Cursor k) throws SQLException {
    if (k == null) {
      ps.setNull(at, java.sql.Types.BIGINT);
      ps.setNull(at + 1, java.sql.Types.VARCHAR);
      ps.setNull(at + 2, java.sql.Types.BIGINT);
    } else {
      ps.setLong(at, k.tx());
      ps.setString(at + 1, k.item());
      ps.setLong(at + 2, k.used());
    }
  }

  /**
   * Where a provider's next payout starts burning: where its last executed payout that burned income
   * ended; before any, after the entries named by its payouts executed before V19 (attributed by
   * range); before all, at the start of its income.
   */
  static PayoutFifo.Cursor fifoCursor(Connection c, String owner) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT fifo_end_tx, fifo_end_item, fifo_end_used FROM bme_request"
        + " WHERE owner = ? AND direction = 'ACT_TO_AKT' AND state = 'EXECUTED' AND fifo_end_tx IS NOT NULL"
        // the latest: its range ends last (V16 index; covers_tx_through is its last item's entry), ties by execution
        + " ORDER BY covers_tx_through DESC, tx_id DESC")) {
      ps.setString(1, owner);
      ps.setMaxRows(1);
      try (ResultSet rs = ps.executeQuery()) {
        if (rs.next()) return new PayoutFifo.Cursor(rs.getLong(1), rs.getString(2), rs.getLong(3));
      }
    }
    long legacy = coveredThrough(c, owner, "state = 'EXECUTED' AND fifo_income_uact IS NULL");
    return PayoutFifo.Cursor.from(legacy + 1);
  }

  /**
   * A node's ACT income from journal entry {@code fromTx} on, in journal order: its receipts' charges
   * (read in pages by their place) and any other ACT credited to it (bootstrap top-ups; one item per
   * journal entry). Read as it is walked.
   */
  static final class Income implements java.util.Iterator<PayoutFifo.Item> {
    /** Pages grow from the first to the largest: a payout of a few receipts reads a few rows, not a page of 1,000. */
    private static final int FIRST_PAGE = 64;
    private static final int PAGE = 4_096;
    private int page = FIRST_PAGE;
    private final Connection c;
    private final String node;
    private final java.util.ArrayDeque<PayoutFifo.Item> receipts = new java.util.ArrayDeque<>();
    private final java.util.ArrayDeque<PayoutFifo.Item> topUps = new java.util.ArrayDeque<>();
    private long lastTx;
    private String lastReceipt;
    private boolean receiptsDone;

    Income(Connection c, String node, long fromTx) throws SQLException {
      this.c = c;
      this.node = node;
      this.lastTx = fromTx;
      this.lastReceipt = null; // nothing read yet: from the start of entry fromTx
      // ACT credited to the provider other than by its receipts (their settlement rows are the items of
      // a settlement entry) or by a cancelled payout giving its ACT back: bootstrap top-ups, in practice
      try (PreparedStatement ps = c.prepareStatement("SELECT p.tx_id, SUM(p.amount) FROM posting p JOIN ledger_tx t"
          + " ON t.id = p.tx_id WHERE p.account = ? AND p.denom = 'uact' AND p.tx_id >= ? AND p.amount > 0"
          + " AND t.kind NOT IN ('settle', 'bme.redeem-cancel') GROUP BY p.tx_id ORDER BY p.tx_id")) {
        ps.setString(1, Accounts.provider(node));
        ps.setLong(2, fromTx);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) topUps.add(new PayoutFifo.Item(rs.getLong(1), PayoutFifo.NOT_A_RECEIPT, rs.getLong(2)));
        }
      }
    }

    private void fill() {
      if (!receipts.isEmpty() || receiptsDone) return;
      try (PreparedStatement ps = c.prepareStatement("SELECT tx_id, receipt_id, charge_uact FROM settlement WHERE node_id = ?"
          + " AND charge_uact > 0 AND " + (lastReceipt == null ? "tx_id >= ?" : "(tx_id > ? OR (tx_id = ? AND receipt_id > ?))")
          + " ORDER BY tx_id, receipt_id")) {
        ps.setString(1, node);
        ps.setLong(2, lastTx);
        if (lastReceipt != null) {
          ps.setLong(3, lastTx);
          ps.setString(4, lastReceipt);
        }
        ps.setMaxRows(page);
        int n = 0;
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            n++;
            lastTx = rs.getLong(1);
            lastReceipt = rs.getString(2);
            receipts.add(new PayoutFifo.Item(lastTx, lastReceipt, rs.getLong(3)));
          }
        }
        if (n < page) receiptsDone = true;
        page = Math.min(PAGE, page * 4);
      } catch (SQLException e) {
        throw new IllegalStateException("cannot read node " + node + "'s settlements", e);
      }
    }

    @Override
    public boolean hasNext() {
      fill();
      return !receipts.isEmpty() || !topUps.isEmpty();
    }

    @Override
    public PayoutFifo.Item next() {
      fill();
      PayoutFifo.Item r = receipts.peek();
      PayoutFifo.Item t = topUps.peek();
      if (r == null && t == null) throw new java.util.NoSuchElementException();
      // a top-up is an entry of its own: it comes before or after a receipt's entry, never inside
      return r == null || (t != null && t.tx() < r.tx()) ? topUps.poll() : receipts.poll();
    }
  }

  private static java.util.Optional<Outcome> fail(Connection c, long id, String owner, long amount, int attempts,
      BmeError code, BmeParams params, long nowMs) throws SQLException {
    return BmeRequests.retryOrCancel(c, id, owner, amount, "uact", Accounts.ENGINE, "bme.redeem-cancel", attempts, code, params,
            nowMs)
        .map(reason -> new Outcome(id, owner, amount, "CANCELED", 0, 0, 0, null, reason));
  }


  /**
   * A provider's payouts, newest first, with how many settled receipts each one names and what they
   * were charged in all.
   */
  public static List<Map<String, Object>> ofProvider(Connection c, String nodeId, int limit) throws SQLException {
    List<Map<String, Object>> out = new ArrayList<>();
    // executed since V19: the receipts it burned, by amount (PayoutFifo); before, and while pending: its range
    try (PreparedStatement ps = c.prepareStatement("SELECT r.id, r.amount, r.state, r.attempts, r.requested_at_ms,"
        + " r.decided_at_ms, r.swap_rate, r.paid_uakt, r.remint_issued_uakt, r.fresh_uakt, r.reason, r.tx_id,"
        + " r.covers_tx_after, r.covers_tx_through, CASE WHEN r.fifo_income_uact IS NOT NULL THEN r.fifo_receipts ELSE"
        + " (SELECT COUNT(*) FROM settlement s WHERE r.state <> 'CANCELED'"
        + " AND s.node_id = ? AND s.tx_id > r.covers_tx_after AND s.tx_id <= r.covers_tx_through) END,"
        + " CASE WHEN r.fifo_income_uact IS NOT NULL THEN r.fifo_receipts_uact ELSE"
        + " (SELECT COALESCE(SUM(s.charge_uact), 0) FROM settlement s WHERE r.state <> 'CANCELED'"
        + " AND s.node_id = ? AND s.tx_id > r.covers_tx_after AND s.tx_id <= r.covers_tx_through) END, r.fifo_income_uact"
        + " FROM bme_request r WHERE r.owner = ? ORDER BY r.id DESC")) {
      ps.setString(1, nodeId);
      ps.setString(2, nodeId);
      ps.setString(3, Accounts.provider(nodeId));
      ps.setMaxRows(limit);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          Map<String, Object> m = new LinkedHashMap<>();
          m.put("id", rs.getLong(1));
          m.put("uact", rs.getLong(2));
          m.put("state", rs.getString(3));
          m.put("attempts", rs.getInt(4));
          m.put("requestedAtMs", rs.getLong(5));
          m.put("decidedAtMs", rs.getObject(6) == null ? null : rs.getLong(6));
          m.put("swapRate", rs.getString(7));
          m.put("paidUakt", rs.getObject(8) == null ? null : rs.getLong(8));
          m.put("remintIssuedUakt", rs.getObject(9) == null ? null : rs.getLong(9));
          m.put("freshUakt", rs.getObject(10) == null ? null : rs.getLong(10));
          m.put("reason", rs.getString(11));
          m.put("txId", rs.getObject(12) == null ? null : rs.getLong(12));
          m.put("receipts", rs.getLong(15));
          // of the ACT it burns, what came from receipts' charges; the rest is bootstrap top-ups (and,
          // for payouts from before V19 attributed by range, receipts named by an earlier partial payout)
          m.put("receiptsUact", rs.getLong(16));
          m.put("attribution", rs.getObject(17) != null ? "amount" : "range");
          out.add(m);
        }
      }
    }
    return out;
  }

  /**
   * The payouts of nodes {@code nodeIds} decided (executed or cancelled) by a journal entry after {@code
   * afterTx}, in the order decided, at most {@code limit}: what a provider account's payout webhooks are
   * told (ADR 32). Each with the entry that decided it ({@link Mints.Decided#txId}) and its status.
   */
  public static List<Mints.Decided> decidedAfter(Connection c, java.util.Collection<String> nodeIds, long afterTx, int limit)
      throws SQLException {
    List<Mints.Decided> out = new ArrayList<>();
    // per node on the owner index, merged in decision order (an account has few nodes)
    try (PreparedStatement ps = c.prepareStatement("SELECT id, amount, state, decided_at_ms, swap_rate, paid_uakt, reason, tx_id"
        + " FROM bme_request WHERE owner = ? AND direction = 'ACT_TO_AKT' AND state IN ('EXECUTED', 'CANCELED') AND tx_id > ?"
        + " ORDER BY tx_id")) {
      for (String node : nodeIds) {
        ps.setString(1, Accounts.provider(node));
        ps.setLong(2, afterTx);
        ps.setMaxRows(limit);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("id", rs.getLong(1));
            m.put("nodeId", node);
            m.put("uact", rs.getLong(2));
            m.put("state", rs.getString(3));
            m.put("decidedAtMs", rs.getLong(4));
            m.put("swapRate", rs.getString(5));
            m.put("paidUakt", rs.getObject(6) == null ? null : rs.getLong(6));
            m.put("reason", rs.getString(7));
            m.put("txId", rs.getLong(8));
            out.add(new Mints.Decided(rs.getLong(8), m));
          }
        }
      }
    }
    out.sort(java.util.Comparator.comparingLong(Mints.Decided::txId).thenComparingLong(d -> (Long) d.status().get("id")));
    return out.size() > limit ? List.copyOf(out.subList(0, limit)) : out;
  }

  /** The last journal entry that decided a payout (0 if none): where a new payout webhook's cursor starts. */
  public static long lastDecisionTx(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT COALESCE(MAX(tx_id), 0) FROM bme_request WHERE direction = 'ACT_TO_AKT' AND tx_id IS NOT NULL");
        ResultSet rs = ps.executeQuery()) {
      rs.next();
      return rs.getLong(1);
    }
  }

  /** A payout as the receipts it burns are looked up by: its owner, state, range and where it started and ended. */
  private record Span(long id, String state, long uact, Long paidUakt, long requestedAtMs, Long decidedAtMs, String node,
      long after, long through, PayoutFifo.Cursor start, PayoutFifo.Cursor end, boolean byAmount) {
    Map<String, Object> json() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("id", id);
      m.put("state", state);
      m.put("uact", uact);
      m.put("paidUakt", paidUakt);
      m.put("requestedAtMs", requestedAtMs);
      m.put("decidedAtMs", decidedAtMs);
      return m;
    }
  }

  private static final String SPAN_COLUMNS = "r.id, r.state, r.amount, r.paid_uakt, r.requested_at_ms, r.decided_at_ms,"
      + " r.owner, r.covers_tx_after, r.covers_tx_through, r.fifo_start_tx, r.fifo_start_item, r.fifo_start_used,"
      + " r.fifo_end_tx, r.fifo_end_item, r.fifo_end_used, r.fifo_income_uact";

  private static Span span(ResultSet rs) throws SQLException {
    PayoutFifo.Cursor start = rs.getObject(10) == null ? null : new PayoutFifo.Cursor(rs.getLong(10), rs.getString(11), rs.getLong(12));
    PayoutFifo.Cursor end = rs.getObject(13) == null ? null : new PayoutFifo.Cursor(rs.getLong(13), rs.getString(14), rs.getLong(15));
    return new Span(rs.getLong(1), rs.getString(2), rs.getLong(3), rs.getObject(4) == null ? null : rs.getLong(4), rs.getLong(5),
        rs.getObject(6) == null ? null : rs.getLong(6), rs.getString(7).substring("provider:".length()), rs.getLong(8),
        rs.getLong(9), start, end, rs.getObject(16) != null);
  }

  /**
   * The receipt ids whose ACT a payout burns. Executed since V19: those whose charge it burned some of,
   * by amount (PayoutFifo). Before V19, or while pending: the settlements to its node in its range of
   * journal entries (pending: the range it will take unless an earlier payout is cancelled). None once
   * cancelled, since its ACT went back to the provider.
   */
  public static List<String> receiptsOf(Connection c, long requestId) throws SQLException {
    Span p;
    try (PreparedStatement ps = c.prepareStatement("SELECT " + SPAN_COLUMNS + " FROM bme_request r WHERE r.id = ?"
        + " AND r.direction = 'ACT_TO_AKT'")) {
      ps.setLong(1, requestId);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) return List.of();
        p = span(rs);
      }
    }
    List<String> out = new ArrayList<>();
    if (p.state().equals("CANCELED") || (p.byAmount() && p.start() == null)) return out;
    try (PreparedStatement ps = c.prepareStatement("SELECT s.receipt_id, s.tx_id, s.charge_uact FROM settlement s"
        + " WHERE s.node_id = ? AND s.tx_id > ? AND s.tx_id <= ? ORDER BY s.receipt_id")) {
      ps.setString(1, p.node());
      ps.setLong(2, p.after());
      ps.setLong(3, p.through());
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          if (!p.byAmount() || PayoutFifo.burnedOf(p.start(), p.end(),
              new PayoutFifo.Item(rs.getLong(2), rs.getString(1), rs.getLong(3))) > 0) {
            out.add(rs.getString(1));
          }
        }
      }
    }
    return out;
  }

  /**
   * The provider payouts that burn the ACT a settled receipt was charged, oldest first, each with how
   * much of it ({@code burnedUact}): one, or two or more when they each burned part of it (by amount,
   * since V19); a payout from before V19 burned all of it by its range; a pending one will burn it
   * ({@code burnedUact} null). Empty until one is asked for. Each: id, state, ACT redeemed in all
   * (uact), AKT paid, when asked and decided.
   */
  public static List<Map<String, Object>> payoutsOf(Connection c, String receiptId) throws SQLException {
    List<Map<String, Object>> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT " + SPAN_COLUMNS + ", s.tx_id, s.charge_uact FROM settlement s"
        + " JOIN bme_request r ON r.owner = 'provider:' || s.node_id AND r.direction = 'ACT_TO_AKT' AND r.state <> 'CANCELED'"
        + " AND s.tx_id > r.covers_tx_after AND s.tx_id <= r.covers_tx_through WHERE s.receipt_id = ? ORDER BY r.id")) {
      ps.setString(1, receiptId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          Span p = span(rs);
          long charge = rs.getLong(18);
          Long burned;
          if (p.byAmount()) {
            burned = PayoutFifo.burnedOf(p.start(), p.end(), new PayoutFifo.Item(rs.getLong(17), receiptId, charge));
            if (burned == 0) continue;
          } else {
            burned = p.state().equals("EXECUTED") ? charge : null;
          }
          Map<String, Object> m = p.json();
          m.put("burnedUact", burned);
          out.add(m);
        }
      }
    }
    return out;
  }

  /** The first of {@link #payoutsOf}: the payout that burned (or will burn) the receipt's ACT, or the first part of it. */
  public static java.util.Optional<Map<String, Object>> payoutOf(Connection c, String receiptId) throws SQLException {
    List<Map<String, Object>> all = payoutsOf(c, receiptId);
    return all.isEmpty() ? java.util.Optional.empty() : java.util.Optional.of(all.get(0));
  }

  public static long pendingCount(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT COUNT(*) FROM bme_request WHERE state = 'PENDING'");
        ResultSet rs = ps.executeQuery()) {
      rs.next();
      return rs.getLong(1);
    }
  }

  /** The last settlement journal entry named by the owner's payouts in {@code states} (0 when none). */
  private static long coveredThrough(Connection c, String owner, String states) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT MAX(covers_tx_through) FROM bme_request WHERE owner = ?"
        + " AND direction = 'ACT_TO_AKT' AND " + states)) {
      ps.setString(1, owner);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  private static long latestSettlementTx(Connection c, String nodeId) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT MAX(tx_id) FROM settlement WHERE node_id = ?")) {
      ps.setString(1, nodeId);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }
}
