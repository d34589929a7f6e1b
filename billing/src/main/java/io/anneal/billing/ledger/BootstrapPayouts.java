package io.anneal.billing.ledger;

import io.anneal.billing.bme.Dec;
import io.anneal.billing.pricing.BootstrapFund;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * bme-spec 16.3 on the ledger, once per pricing window: the mint spread the engine holds (beyond
 * ACT waiting in pending payouts) moves into the bootstrap fund, then small providers are topped up
 * from the fund to their floor revenue, scaled by the sunset share at the window's utilization and
 * capped by the fund. Every movement is a balanced ledger entry.
 *
 * <p>Each window pays only for the part of its span that no earlier window paid for (ADR 21): the
 * store keeps the span of every window it paid ({@code bootstrap_window}), so a window that overlaps
 * the one before (a deposed scheduler's last window and its successor's first, in a takeover) is
 * paid from where that one ended, and one wholly inside it pays nothing.
 */
public final class BootstrapPayouts {
  public static final String FUND = "bme:bootstrap-fund";

  private BootstrapPayouts() {}

  /** One node's window as the scheduler saw it. */
  public record NodeWindow(String nodeId, int gpus, String gpuClass, Dec online) {}

  /**
   * @param paidFromMs where the window was paid from: its start, or the end of the window before it if later
   * @param covered earlier windows had paid for all of this one's span: nothing was moved, paid or recorded
   */
  public record Result(long movedToFundUact, long fundUact, List<BootstrapFund.Payout> payouts, long paidFromMs,
      boolean covered) {}

  /**
   * @param floorUactPerGpuHour floor revenue per GPU-hour by GPU class
   * @param utilization network utilization of the window (busy over available GPU-seconds)
   * @param epochSeconds the length of the accounting epochs settlements are filed in: the window's
   *     revenue is read from the epochs its span falls in, not from every settlement of the ledger
   */
  public static Result closeWindow(Connection c, BootstrapFund fund, List<NodeWindow> nodes,
      Map<String, Long> floorUactPerGpuHour, long startMs, long endMs, Dec utilization, long epochSeconds)
      throws SQLException {
    SqlLedger.settlementBarrier(c); // every settlement of the window is committed before it is summed
    // and no other window is being closed: the barrier is exclusive, so the span read here stays the last
    long paidThrough = paidThroughMs(c);
    long fromMs = Math.max(startMs, paidThrough);
    if (endMs <= fromMs) return new Result(0, SqlLedger.balance(c, FUND, "uact"), List.of(), fromMs, true);
    long pending = 0;
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT COALESCE(SUM(amount), 0) FROM bme_request WHERE state = 'PENDING' AND direction = 'ACT_TO_AKT'");
        ResultSet rs = ps.executeQuery()) {
      rs.next();
      pending = rs.getLong(1);
    }
    long spread = SqlLedger.balance(c, Accounts.ENGINE, "uact") - pending;
    long moved = 0;
    if (spread > 0 && SqlLedger.post(c, "bme.fund-move", "fund-move:" + endMs,
        List.of(new Posting(Accounts.ENGINE, "uact", -spread), new Posting(FUND, "uact", spread))).isPresent()) {
      moved = spread;
    }
    Map<String, Long> revenue = new HashMap<>();
    // a settlement's epoch is that of its settlement time, so the span's epochs hold all of it; read through
    // the epoch index, this costs the settlements of those epochs, where a scan of every settlement grew with
    // the ledger while settlements waited (the barrier above is exclusive)
    try (PreparedStatement ps = c.prepareStatement(WINDOW_REVENUE)) {
      long epochMs = epochSeconds * 1000;
      ps.setLong(1, Math.floorDiv(fromMs, epochMs));
      ps.setLong(2, Math.floorDiv(endMs - 1, epochMs));
      ps.setTimestamp(3, new java.sql.Timestamp(fromMs));
      ps.setTimestamp(4, new java.sql.Timestamp(endMs));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) revenue.put(rs.getString(1), rs.getLong(2));
      }
    }
    List<BootstrapFund.ProviderWindow> windows = new ArrayList<>();
    for (NodeWindow n : nodes) {
      Long floor = floorUactPerGpuHour.get(n.gpuClass());
      if (floor == null) continue;
      windows.add(new BootstrapFund.ProviderWindow(n.nodeId(), n.gpus(), n.online(), revenue.getOrDefault(n.nodeId(), 0L),
          floor));
    }
    long balance = SqlLedger.balance(c, FUND, "uact");
    List<BootstrapFund.Payout> payouts = fund.payouts(windows, Math.max(1, (endMs - fromMs) / 1000), utilization, endMs,
        balance);
    if (!payouts.isEmpty()) {
      List<Posting> postings = new ArrayList<>();
      long total = 0;
      for (BootstrapFund.Payout p : payouts) {
        postings.add(new Posting(Accounts.provider(p.provider()), "uact", p.uact()));
        total += p.uact();
      }
      postings.add(new Posting(FUND, "uact", -total));
      if (SqlLedger.post(c, "bootstrap.payout", "bootstrap:" + endMs, postings).isEmpty()) payouts = List.of();
    }
    long fundNow = SqlLedger.balance(c, FUND, "uact");
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO bootstrap_window (end_ms, start_ms, asked_start_ms,"
        + " utilization, providers, paid_uact, fund_uact) VALUES (?, ?, ?, ?, ?, ?, ?)")) {
      ps.setLong(1, endMs);
      ps.setLong(2, fromMs);
      ps.setLong(3, startMs);
      ps.setString(4, utilization.toString());
      ps.setInt(5, payouts.size());
      ps.setLong(6, payouts.stream().mapToLong(BootstrapFund.Payout::uact).sum());
      ps.setLong(7, fundNow);
      ps.executeUpdate();
    }
    return new Result(moved, fundNow, payouts, fromMs, false);
  }

  /** Each node's revenue settled in a span ({@code settled_at} from, to), within the epochs that span falls in. */
  static final String WINDOW_REVENUE = "SELECT node_id, SUM(charge_uact) FROM settlement WHERE epoch BETWEEN ? AND ?"
      + " AND settled_at >= ? AND settled_at < ? GROUP BY node_id";

  /** The end of the last window paid, or {@link Long#MIN_VALUE} if none was. */
  static long paidThroughMs(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT MAX(end_ms) FROM bootstrap_window");
        ResultSet rs = ps.executeQuery()) {
      rs.next();
      long v = rs.getLong(1);
      return rs.wasNull() ? Long.MIN_VALUE : v;
    }
  }

  /** The last {@code limit} windows paid, newest first. */
  public static List<Map<String, Object>> windows(Connection c, int limit) throws SQLException {
    List<Map<String, Object>> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT end_ms, start_ms, asked_start_ms, utilization, providers,"
        + " paid_uact, fund_uact FROM bootstrap_window ORDER BY end_ms DESC LIMIT ?")) {
      ps.setInt(1, limit);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          Map<String, Object> m = new java.util.LinkedHashMap<>();
          m.put("endMs", rs.getLong(1));
          m.put("paidFromMs", rs.getLong(2));
          m.put("startMs", rs.getLong(3));
          m.put("utilization", rs.getString(4));
          m.put("providers", rs.getInt(5));
          m.put("paidUact", rs.getLong(6));
          m.put("fundUact", rs.getLong(7));
          out.add(m);
        }
      }
    }
    return out;
  }
}
