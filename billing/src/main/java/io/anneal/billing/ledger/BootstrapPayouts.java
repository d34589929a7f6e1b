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
 */
public final class BootstrapPayouts {
  public static final String FUND = "bme:bootstrap-fund";

  private BootstrapPayouts() {}

  /** One node's window as the scheduler saw it. */
  public record NodeWindow(String nodeId, int gpus, String gpuClass, Dec online) {}

  public record Result(long movedToFundUact, long fundUact, List<BootstrapFund.Payout> payouts) {}

  /**
   * @param floorUactPerGpuHour floor revenue per GPU-hour by GPU class
   * @param utilization network utilization of the window (busy over available GPU-seconds)
   */
  public static Result closeWindow(Connection c, BootstrapFund fund, List<NodeWindow> nodes,
      Map<String, Long> floorUactPerGpuHour, long startMs, long endMs, Dec utilization) throws SQLException {
    SqlLedger.settlementBarrier(c); // every settlement of the window is committed before it is summed
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
    try (PreparedStatement ps = c.prepareStatement("SELECT node_id, SUM(charge_uact) FROM settlement"
        + " WHERE settled_at >= ? AND settled_at < ? GROUP BY node_id")) {
      ps.setTimestamp(1, new java.sql.Timestamp(startMs));
      ps.setTimestamp(2, new java.sql.Timestamp(endMs));
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
    List<BootstrapFund.Payout> payouts = fund.payouts(windows, Math.max(1, (endMs - startMs) / 1000), utilization, endMs,
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
    return new Result(moved, SqlLedger.balance(c, FUND, "uact"), payouts);
  }
}
