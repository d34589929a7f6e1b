package io.anneal.billing.ledger;

import io.anneal.billing.bme.Bme;
import io.anneal.billing.bme.BmeError;
import io.anneal.billing.bme.BmeException;
import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.Direction;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.bme.Quote;
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
import java.util.Optional;

/**
 * Tenant top-ups on the SQL ledger (bme-spec 14): a deposit of AKT is recorded and queued as an
 * AKT→ACT request (8.1: the AKT goes to the vault at once, as pending); a mint epoch executes queued
 * requests in owner order within the tick's budget (9.2, 10.2) and the tenant's ACT arrives then.
 * Refused at request while HALT_CR or HALT_ORACLE; a request whose output would be below the minimum
 * mint is refused at once (the 16.4 option, so that the API answers instead of refunding a minute
 * later). Fatal failures at execution cancel with the AKT refunded; retriable ones are retried.
 */
public final class Mints {
  private Mints() {}

  public record Requested(long id, long uakt, boolean duplicate, LedgerRefusal refusal, String detail, String estimateUact) {
    static Requested refused(LedgerRefusal why, String detail) {
      return new Requested(0, 0, false, why, detail, null);
    }
  }

  public record Outcome(long id, String owner, long uakt, String state, long mintedUact, long creditedUact,
      long spreadUact, String swapRate, String reason) {}

  private static String ref(String reference) {
    return "deposit:" + reference;
  }

  /** Records a deposit and queues its conversion. Idempotent on {@code reference}; a refusal writes nothing. */
  public static Requested request(Connection c, String tenantId, String reference, long uakt, OracleSnapshot oracle,
      BmeParams params, long nowMs) throws SQLException {
    return requestFor(c, Accounts.tenant(tenantId), reference, uakt, oracle, params, nowMs);
  }

  /**
   * A treasury grant to the bootstrap fund (bme-spec 16.3 "plus optional treasury grants"): AKT from
   * outside, converted like a deposit at the next mint epoch, whose ACT is credited to the fund.
   */
  public static Requested grantToFund(Connection c, String reference, long uakt, OracleSnapshot oracle, BmeParams params,
      long nowMs) throws SQLException {
    return requestFor(c, BootstrapPayouts.FUND, "grant:" + reference, uakt, oracle, params, nowMs);
  }

  private static Requested requestFor(Connection c, String ownerAccount, String reference, long uakt, OracleSnapshot oracle,
      BmeParams params, long nowMs) throws SQLException {
    if (uakt <= 0) return Requested.refused(LedgerRefusal.INVALID_AMOUNT, "deposit must be > 0 uakt");
    try (PreparedStatement ps = c.prepareStatement("SELECT id, amount FROM bme_request WHERE ref = ?")) {
      ps.setString(1, ref(reference));
      try (ResultSet rs = ps.executeQuery()) {
        if (rs.next()) return new Requested(rs.getLong(1), rs.getLong(2), true, null, null, null);
      }
    }
    // a deposit recorded before mints were queued (converted at once, ADR 4) is a duplicate too
    if (SqlLedger.txIdByRef(c, ref(reference)).isPresent()) return new Requested(0, uakt, true, null, null, null);
    SupplyView s = SqlLedger.supply(c);
    Quote q;
    try {
      Bme.admit(Status.valueOf(s.status()), Direction.AKT_TO_ACT, oracle);
      q = Bme.quote(Direction.AKT_TO_ACT, BigInteger.valueOf(uakt), oracle, params, null);
    } catch (BmeException e) {
      LedgerRefusal why = switch (e.code()) {
        case MINIMUM_MINT, EPSILON -> LedgerRefusal.BELOW_MINIMUM_MINT;
        case ORACLE_UNHEALTHY, ZERO_PRICE -> LedgerRefusal.ORACLE_UNHEALTHY;
        case CIRCUIT_BREAKER -> LedgerRefusal.CIRCUIT_BREAKER;
        default -> LedgerRefusal.INVALID_AMOUNT;
      };
      return Requested.refused(why, e.getMessage());
    }
    long depth = params.options().maxQueueDepth();
    if (depth > 0) {
      // 16.4 back-pressure for demand spikes: refused (HTTP 429) while the mint queue is full
      long queued = pendingMints(c);
      if (queued >= depth) {
        return Requested.refused(LedgerRefusal.QUEUE_FULL, "the mint queue holds " + queued + " top-ups (limit " + depth
            + "); they are converted at each mint epoch");
      }
    }
    SqlLedger.post(c, "deposit", ref(reference),
        List.of(new Posting(Accounts.EXTERNAL_CHAIN, "uakt", -uakt), new Posting(ownerAccount, "uakt", uakt)));
    long id = queue(c, ownerAccount, reference, uakt, nowMs);
    return new Requested(id, uakt, false, null, null, q.userAmount().toString());
  }

  /** Moves {@code uakt} of the owner's AKT to the vault as pending (8.1) and queues its conversion; returns its id. */
  private static long queue(Connection c, String ownerAccount, String reference, long uakt, long nowMs)
      throws SQLException {
    SqlLedger.post(c, "bme.mint-request", "mint-request:" + reference,
        List.of(new Posting(ownerAccount, "uakt", -uakt), new Posting(Accounts.VAULT, "uakt", uakt)));
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO bme_request (ref, owner, direction, amount, state, attempts,"
        + " requested_at_ms, covers_tx_after, covers_tx_through) VALUES (?, ?, 'AKT_TO_ACT', ?, 'PENDING', 0, ?, 0, 0)",
        new String[] {"id"})) {
      ps.setString(1, ref(reference));
      ps.setString(2, ownerAccount);
      ps.setLong(3, uakt);
      ps.setLong(4, nowMs);
      ps.executeUpdate();
      try (ResultSet rs = ps.getGeneratedKeys()) {
        rs.next();
        return rs.getLong(1);
      }
    }
  }

  /**
   * After a halt (ADR 0009): AKT that tenants deposited directly while the BME was halted, and that no
   * job holds, is queued for conversion into ACT like any deposit once mints are allowed again (stored
   * status HEALTHY or WARNING, healthy oracle). A balance whose mint would be below the minimum stays
   * AKT (it pays jobs in the next halt). Returns how many conversions were queued.
   */
  public static int convertDirectDeposits(Connection c, OracleSnapshot oracle, BmeParams params, long nowMs)
      throws SQLException {
    try {
      Bme.admit(Status.valueOf(SqlLedger.storedStatus(c)), Direction.AKT_TO_ACT, oracle);
    } catch (BmeException e) {
      return 0; // still halted, or no price: conversions wait
    }
    List<String[]> free = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT account, amount FROM balance WHERE denom = 'uakt'"
        + " AND account LIKE 'tenant:%' AND amount > 0 ORDER BY account")) {
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) free.add(new String[] {rs.getString(1), Long.toString(rs.getLong(2))});
      }
    }
    int queued = 0;
    for (String[] f : free) {
      long uakt = Long.parseLong(f[1]);
      try {
        Bme.quote(Direction.AKT_TO_ACT, BigInteger.valueOf(uakt), oracle, params, null);
      } catch (BmeException e) {
        continue; // below the minimum at today's price: stays AKT for now
      }
      queue(c, f[0], "direct-convert:" + f[0] + ":" + nowMs, uakt, nowMs);
      queued++;
    }
    return queued;
  }

  /**
   * An AKT deposit kept as AKT for the AKT-direct fallback (bme-spec 16.5): accepted only while the
   * stored breaker status is HALT_CR or worse and the oracle is healthy (when top-ups into ACT are
   * refused). The AKT stays on the tenant's account ({@code uakt}); jobs admitted while halted that
   * the tenant's ACT cannot cover hold it and pay providers from it. Idempotent on {@code reference}.
   */
  public static Requested depositDirect(Connection c, String tenantId, String reference, long uakt, OracleSnapshot oracle)
      throws SQLException {
    if (uakt <= 0) return Requested.refused(LedgerRefusal.INVALID_AMOUNT, "deposit must be > 0 uakt");
    String ref = "deposit-direct:" + reference;
    Optional<Long> earlier = SqlLedger.txIdByRef(c, ref);
    if (earlier.isPresent()) return new Requested(earlier.get(), uakt, true, null, null, null);
    Status stored = Status.valueOf(SqlLedger.storedStatus(c));
    if (!AktDirect.allowedIn(stored) || !oracle.healthy()) {
      return Requested.refused(LedgerRefusal.AKT_DIRECT_UNAVAILABLE, "AKT-direct deposits are taken only while the BME is"
          + " halted (now " + stored + ") with a healthy oracle" + (oracle.healthy() ? "" : " (it is not)")
          + "; deposit AKT to mint ACT instead");
    }
    long tx = SqlLedger.post(c, "deposit.direct", ref,
        List.of(new Posting(Accounts.EXTERNAL_CHAIN, "uakt", -uakt), new Posting(Accounts.tenant(tenantId), "uakt", uakt)))
        .orElseThrow();
    return new Requested(tx, uakt, false, null, null, null);
  }

  /** AKT of queued mints (in the vault, not yet collateral: bme-spec pendingAkt). */
  public static long pendingUakt(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT COALESCE(SUM(amount), 0) FROM bme_request WHERE state = 'PENDING' AND direction = 'AKT_TO_ACT'");
        ResultSet rs = ps.executeQuery()) {
      rs.next();
      return rs.getLong(1);
    }
  }

  /** Top-ups queued for the next mint epochs. */
  private static long pendingMints(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT COUNT(*) FROM bme_request WHERE state = 'PENDING' AND direction = 'AKT_TO_ACT'");
        ResultSet rs = ps.executeQuery()) {
      rs.next();
      return rs.getLong(1);
    }
  }

  /** A mint epoch: queued requests in owner order, at most {@code budget} (the first always runs). */
  public static List<Outcome> runEpoch(Connection c, OracleSnapshot oracle, BmeParams params, long nowMs, int budget)
      throws SQLException {
    List<long[]> queue = new ArrayList<>();
    List<String> owners = new ArrayList<>();
    SqlLedger.pendingInSpecOrder(c, "AKT_TO_ACT", params.options().fifoQueue(), Math.max(1, budget), queue, owners);
    List<Outcome> out = new ArrayList<>();
    for (int i = 0; i < queue.size(); i++) {
      long id = queue.get(i)[0];
      long amount = queue.get(i)[1];
      int attempts = (int) queue.get(i)[2];
      String owner = owners.get(i);
      Quote q;
      try {
        q = Bme.quote(Direction.AKT_TO_ACT, BigInteger.valueOf(amount), oracle, params, null);
      } catch (BmeException e) {
        fail(c, id, owner, amount, attempts, e.code(), params, nowMs).ifPresent(out::add);
        continue;
      }
      long mint = q.mintAmount().longValueExact();
      long spread = q.spreadAmount().longValueExact();
      long user = q.userAmount().longValueExact();
      List<Posting> postings = new ArrayList<>();
      postings.add(new Posting(Accounts.ACT_ISSUANCE, "uact", -mint));
      if (user > 0) postings.add(new Posting(owner, "uact", user));
      if (spread > 0) postings.add(new Posting(Accounts.ENGINE, "uact", spread));
      long tx = SqlLedger.post(c, "bme.mint", "mint:" + id, postings).orElseThrow();
      try (PreparedStatement ps = c.prepareStatement(
          "UPDATE bme_state SET remint_credits = remint_credits + ?, total_minted_uact = total_minted_uact + ? WHERE id = 1")) {
        ps.setLong(1, amount);
        ps.setLong(2, mint);
        ps.executeUpdate();
      }
      try (PreparedStatement ps = c.prepareStatement("UPDATE bme_request SET state = 'EXECUTED', decided_at_ms = ?,"
          + " swap_rate = ?, minted_uact = ?, credited_uact = ?, spread_uact = ?, tx_id = ? WHERE id = ?")) {
        ps.setLong(1, nowMs);
        ps.setString(2, q.swapRate().toString());
        ps.setLong(3, mint);
        ps.setLong(4, user);
        ps.setLong(5, spread);
        ps.setLong(6, tx);
        ps.setLong(7, id);
        ps.executeUpdate();
      }
      out.add(new Outcome(id, owner, amount, "EXECUTED", mint, user, spread, q.swapRate().toString(), null));
    }
    return out;
  }

  private static Optional<Outcome> fail(Connection c, long id, String owner, long amount, int attempts,
      BmeError code, BmeParams params, long nowMs) throws SQLException {
    return BmeRequests.retryOrCancel(c, id, owner, amount, "uakt", Accounts.VAULT, "bme.mint-cancel", attempts, code, params,
            nowMs)
        .map(reason -> new Outcome(id, owner, amount, "CANCELED", 0, 0, 0, null, reason));
  }


  /** A treasury grant by its reference, as {@link #status}. */
  public static Optional<Map<String, Object>> grantStatus(Connection c, String reference) throws SQLException {
    return statusOf(c, BootstrapPayouts.FUND, "grant:" + reference, reference);
  }

  /** A tenant's deposit by its reference: amount, state and, once executed, what it minted. */
  public static Optional<Map<String, Object>> status(Connection c, String tenantId, String reference) throws SQLException {
    return statusOf(c, Accounts.tenant(tenantId), reference, reference);
  }

  private static final String STATUS_COLUMNS = "id, amount, state, attempts, requested_at_ms, decided_at_ms, swap_rate,"
      + " minted_uact, credited_uact, spread_uact, reason, ref, tx_id";

  private static Optional<Map<String, Object>> statusOf(Connection c, String ownerAccount, String reference, String shown)
      throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT " + STATUS_COLUMNS + " FROM bme_request WHERE ref = ? AND owner = ?")) {
      ps.setString(1, ref(reference));
      ps.setString(2, ownerAccount);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? Optional.of(statusRow(rs, shown)) : Optional.empty();
      }
    }
  }

  private static Map<String, Object> statusRow(ResultSet rs, String shown) throws SQLException {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("requestId", rs.getLong(1));
    m.put("reference", shown);
    m.put("depositedUakt", rs.getLong(2));
    m.put("state", rs.getString(3));
    m.put("attempts", rs.getInt(4));
    m.put("requestedAtMs", rs.getLong(5));
    m.put("decidedAtMs", rs.getObject(6) == null ? null : rs.getLong(6));
    m.put("swapRate", rs.getString(7));
    m.put("mintedUact", rs.getObject(8) == null ? null : rs.getLong(8));
    m.put("creditedUact", rs.getObject(9) == null ? null : rs.getLong(9));
    m.put("spreadUact", rs.getObject(10) == null ? null : rs.getLong(10));
    m.put("reason", rs.getString(11));
    return m;
  }

  /** A deposit decided (executed or cancelled) by the journal entry {@code txId}, with its state as {@link #status} shows it. */
  public record Decided(long txId, Map<String, Object> status) {}

  /**
   * The tenant's deposits decided after journal entry {@code afterTx}, in the order they were decided (their
   * entries'), at most {@code limit}. Decisions are made by the BME ticks of the one billing instance, one
   * tick at a time, so a later decision always has a later entry.
   */
  public static List<Decided> decidedAfter(Connection c, String tenantId, long afterTx, int limit) throws SQLException {
    List<Decided> out = new java.util.ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT " + STATUS_COLUMNS + " FROM bme_request WHERE owner = ?"
        + " AND direction = 'AKT_TO_ACT' AND state IN ('EXECUTED', 'CANCELED') AND tx_id > ? ORDER BY tx_id")) {
      ps.setString(1, Accounts.tenant(tenantId));
      ps.setLong(2, afterTx);
      ps.setMaxRows(limit);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          String ref = rs.getString(12);
          out.add(new Decided(rs.getLong(13), statusRow(rs, ref.startsWith("deposit:") ? ref.substring("deposit:".length()) : ref)));
        }
      }
    }
    return out;
  }

  /** The last journal entry that decided a deposit (0 if none): where a new subscriber's cursor starts. */
  public static long lastDecisionTx(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT COALESCE(MAX(tx_id), 0) FROM bme_request WHERE direction = 'AKT_TO_ACT' AND tx_id IS NOT NULL");
        ResultSet rs = ps.executeQuery()) {
      rs.next();
      return rs.getLong(1);
    }
  }
}
