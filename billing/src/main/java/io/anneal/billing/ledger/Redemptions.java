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
      // its receipts, final now: from where the provider's last executed payout ended (a cancelled one
      // redeemed nothing, so its receipts fall to this one) through the latest settled when it was asked
      long after = coveredThrough(c, owner, "state = 'EXECUTED'");
      try (PreparedStatement ps = c.prepareStatement("UPDATE bme_request SET state = 'EXECUTED', decided_at_ms = ?,"
          + " swap_rate = ?, paid_uakt = ?, remint_issued_uakt = ?, fresh_uakt = ?, tx_id = ?, covers_tx_after = ?,"
          + " covers_tx_through = GREATEST(covers_tx_through, ?) WHERE id = ?")) {
        ps.setLong(1, nowMs);
        ps.setString(2, q.swapRate().toString());
        ps.setLong(3, user);
        ps.setLong(4, issued);
        ps.setLong(5, fresh);
        ps.setLong(6, tx);
        ps.setLong(7, after);
        ps.setLong(8, after);
        ps.setLong(9, id);
        ps.executeUpdate();
      }
      out.add(new Outcome(id, owner, amount, "EXECUTED", user, issued, fresh, q.swapRate().toString(), null));
    }
    return out; // the caller's tick re-evaluates the breaker (bme-spec 9.1)
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
    try (PreparedStatement ps = c.prepareStatement("SELECT r.id, r.amount, r.state, r.attempts, r.requested_at_ms,"
        + " r.decided_at_ms, r.swap_rate, r.paid_uakt, r.remint_issued_uakt, r.fresh_uakt, r.reason, r.tx_id,"
        + " r.covers_tx_after, r.covers_tx_through, (SELECT COUNT(*) FROM settlement s WHERE r.state <> 'CANCELED'"
        + " AND s.node_id = ? AND s.tx_id > r.covers_tx_after AND s.tx_id <= r.covers_tx_through),"
        + " (SELECT COALESCE(SUM(s.charge_uact), 0) FROM settlement s WHERE r.state <> 'CANCELED'"
        + " AND s.node_id = ? AND s.tx_id > r.covers_tx_after AND s.tx_id <= r.covers_tx_through)"
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
          // of the ACT it burns, what its receipts were charged; the rest is ACT from elsewhere (bootstrap
          // top-ups, or receipts named by an earlier payout of part of the balance, ADR 8)
          m.put("receiptsUact", rs.getLong(16));
          out.add(m);
        }
      }
    }
    return out;
  }

  /**
   * The receipt ids whose ACT a payout redeems (settlements to its node in its journal range; while it
   * is pending, the range it will take unless an earlier payout of the node is cancelled; none once
   * it is cancelled, since its ACT went back to the provider).
   */
  public static List<String> receiptsOf(Connection c, long requestId) throws SQLException {
    List<String> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT s.receipt_id FROM bme_request r JOIN settlement s"
        + " ON s.node_id = SUBSTRING(r.owner, 10) AND s.tx_id > r.covers_tx_after AND s.tx_id <= r.covers_tx_through"
        + " WHERE r.id = ? AND r.state <> 'CANCELED' ORDER BY s.receipt_id")) {
      ps.setLong(1, requestId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) out.add(rs.getString(1));
      }
    }
    return out;
  }

  /**
   * The provider payout whose range holds a settled receipt: the one that burned the ACT it was charged
   * for the AKT paid to its provider (or will, while pending); empty until one is asked for. Its id,
   * state, ACT redeemed in all (uact), AKT paid, when asked and decided.
   */
  public static java.util.Optional<Map<String, Object>> payoutOf(Connection c, String receiptId) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT r.id, r.state, r.amount, r.paid_uakt, r.requested_at_ms,"
        + " r.decided_at_ms FROM settlement s JOIN bme_request r ON r.owner = 'provider:' || s.node_id"
        + " AND r.direction = 'ACT_TO_AKT' AND r.state <> 'CANCELED' AND s.tx_id > r.covers_tx_after"
        + " AND s.tx_id <= r.covers_tx_through WHERE s.receipt_id = ? ORDER BY r.id")) {
      ps.setString(1, receiptId);
      ps.setMaxRows(1);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) return java.util.Optional.empty();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", rs.getLong(1));
        m.put("state", rs.getString(2));
        m.put("uact", rs.getLong(3));
        m.put("paidUakt", rs.getObject(4) == null ? null : rs.getLong(4));
        m.put("requestedAtMs", rs.getLong(5));
        m.put("decidedAtMs", rs.getObject(6) == null ? null : rs.getLong(6));
        return java.util.Optional.of(m);
      }
    }
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
