package io.anneal.billing.ledger;

import io.anneal.billing.sql.Database;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A statement of account, a tenant's or a provider's ({@link #readProvider}). A tenant's: the journal
 * entries that moved its ACT or AKT (its own account and its escrow), newest first, each with what it
 * changed and the balances after it, so that the lines add up to the balances the tenant is shown. A
 * provider's: the entries that moved what its node earned (ACT) or was paid directly (AKT). Read from the
 * postings (indexed by account, denomination and entry), in one snapshot; nothing is written.
 *
 * <p>Entries are ordered by their id. Settlement lanes commit entries out of id order, so a balance
 * "after" an entry is the sum of the entries up to it in that order, not necessarily a balance the
 * account had at one moment; the newest line's balance is the balance now.
 *
 * <p>Admission holds and settlements are journal entries for a batch of jobs, often of several
 * tenants: their references name another job, so they are not shown; a settlement entry's own
 * settlements of the tenant are read by {@link #entry}.
 *
 * <p>A statement may be read for a {@link Period} (a month, say): its lines are then the entries of the
 * period, and a {@link Summary} gives the balances at its opening and closing and what each kind of
 * entry changed in it. A period's edges are placed in the journal by time: it starts at the first entry
 * made at or after its {@code from} and ends before the first made at or after its {@code to}, found by
 * a binary search over the entries' ids (a few dozen primary-key reads, however long the journal).
 * Settlement lanes may commit entries a few milliseconds out of time order; such an entry at an edge
 * is in the period its place in the journal puts it in, so consecutive periods share no entry and
 * miss none, and one period's closing balance is the next one's opening.
 */
public final class AccountStatement {
  public static final int MAX_LIMIT = 500;
  /** Entry kinds recorded for a batch across tenants: their reference is not a tenant's to read. */
  private static final java.util.Set<String> SHARED_KINDS = java.util.Set.of("escrow.hold", "settle");

  /**
   * Amounts of a tenant's four balances, in base units: ACT available and held, AKT-direct available and
   * held; a provider's ACT earned and AKT paid are in the two "available" ones.
   */
  public record Amounts(long uact, long escrowUact, long uakt, long escrowUakt) {
    static final Amounts ZERO = new Amounts(0, 0, 0, 0);

    Amounts plus(Amounts o) {
      return new Amounts(uact + o.uact, escrowUact + o.escrowUact, uakt + o.uakt, escrowUakt + o.escrowUakt);
    }

    Amounts minus(Amounts o) {
      return new Amounts(uact - o.uact, escrowUact - o.escrowUact, uakt - o.uakt, escrowUakt - o.escrowUakt);
    }

    /**
     * As the API shows a balance: the four amounts in base units and ACT available as a decimal ({@code uakt}
     * is the AKT-direct deposit, bme-spec 16.5; {@code escrowUakt} what running jobs hold of it).
     */
    public Map<String, Object> toMap() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("uact", uact);
      m.put("escrowUact", escrowUact);
      m.put("uakt", uakt);
      m.put("escrowUakt", escrowUakt);
      m.put("act", java.math.BigDecimal.valueOf(uact, 6).toPlainString());
      return m;
    }
  }

  /** A tenant's four balances now. */
  public static Amounts balancesOf(Connection c, String tenantId) throws SQLException {
    return balances(c, Owner.tenant(tenantId).acc());
  }

  /** One journal entry as the tenant sees it; {@code ref} is null for entries of a batch across tenants. */
  public record Entry(long txId, String kind, String ref, Instant at, Amounts change, Amounts balanceAfter) {}

  /**
   * A page of entries, newest first, and the id to read the next (older) page before, or null at the
   * first entry (of the period, when read for one); {@code summary} is the period's, or null.
   */
  public record Page(Amounts balance, List<Entry> entries, Long nextBefore, Summary summary) {
    public Page(Amounts balance, List<Entry> entries, Long nextBefore) {
      this(balance, entries, nextBefore, null);
    }
  }

  /**
   * A span of time: the entries made at or after {@code from} (null: from the first entry) and before
   * {@code to} (null: up to now).
   */
  public record Period(Instant from, Instant to) {
    public Period {
      if (from != null && to != null && !from.isBefore(to)) {
        throw new IllegalArgumentException("a period's from (" + from + ") must be before its to (" + to + ")");
      }
    }
  }

  /** What one kind of entry changed in a period, and in how many entries. */
  public record KindTotal(String kind, long entries, Amounts change) {}

  /**
   * A period's account: the balances at its opening (before its first entry) and closing (after its
   * last; the balances now for a period open towards now), its number of entries and what each kind of
   * entry changed, in kind order; the opening plus every kind's change is the closing.
   */
  public record Summary(Period period, Amounts opening, Amounts closing, long entries, List<KindTotal> totals) {}

  /** One of the tenant's settled runs in a settlement entry. */
  public record SettledRun(String receiptId, String jobId, String nodeId, long chargeUact, long refundUact, long paidUakt) {}

  /** One of the tenant's jobs an admission hold entry held: ACT, or AKT from an AKT-direct deposit. */
  public record HeldJob(String jobId, long uact, long uakt) {}

  /**
   * An entry with, for a settlement, the owner's runs it settled (in receipt-id order) and, for an
   * admission hold, the tenant's jobs it held (in job-id order; none for holds made before V22).
   */
  public record Detail(Entry entry, List<SettledRun> settlements, List<HeldJob> holds) {
    public Detail(Entry entry, List<SettledRun> settlements) {
      this(entry, settlements, List.of());
    }
  }

  private AccountStatement() {}

  /**
   * Whose statement: the (account, denomination) pair behind each of the four {@link Amounts} (null where
   * the owner has none), the entry kinds recorded for a batch across owners (their reference is not
   * shown), and the settlement column that names the owner's runs.
   */
  private record Owner(String id, String[][] acc, java.util.Set<String> shared, String runsOf) {
    /** A tenant: its ACT and AKT-direct balances, available and in escrow. */
    static Owner tenant(String tenantId) {
      return new Owner(tenantId, new String[][] {{Accounts.tenant(tenantId), "uact"}, {Accounts.escrow(tenantId), "uact"},
          {Accounts.tenant(tenantId), "uakt"}, {Accounts.escrow(tenantId), "uakt"}}, SHARED_KINDS, "tenant_id");
    }

    /**
     * A provider (a node): the ACT it earned and has not redeemed, and the AKT it was paid directly (bme-spec
     * 16.5), in the "available" slots. Settlements are batches across providers; a bootstrap payout names
     * its window, which is every provider's.
     */
    static Owner provider(String nodeId) {
      return new Owner(nodeId, new String[][] {{Accounts.provider(nodeId), "uact"}, null, {Accounts.provider(nodeId), "uakt"}, null},
          java.util.Set.of("settle"), "node_id");
    }
  }

  /**
   * Up to {@code limit} (1..{@link #MAX_LIMIT}) entries with id below {@code before} (null: from the
   * newest), newest first.
   */
  public static Page read(Connection c, String tenantId, Long before, int limit) throws SQLException {
    return read(c, tenantId, before, limit, null);
  }

  /**
   * Up to {@code limit} (1..{@link #MAX_LIMIT}) entries of {@code period} (null: of the whole journal,
   * without a summary) with id below {@code before} (null: from the period's newest), newest first.
   */
  public static Page read(Connection c, String tenantId, Long before, int limit, Period period) throws SQLException {
    return read(c, Owner.tenant(tenantId), before, limit, period);
  }

  /**
   * A provider's statement (node {@code nodeId}): the entries that moved the ACT it earned ({@code uact})
   * or the AKT it was paid ({@code uakt}) — settlements, bootstrap payouts, redemptions — as {@link
   * #read(Connection, String, Long, int, Period)} gives a tenant's; the escrow amounts are always zero.
   */
  public static Page readProvider(Connection c, String nodeId, Long before, int limit, Period period) throws SQLException {
    return read(c, Owner.provider(nodeId), before, limit, period);
  }

  private static Page read(Connection c, Owner owner, Long before, int limit, Period period) throws SQLException {
    if (limit < 1 || limit > MAX_LIMIT) throw new IllegalArgumentException("limit must be 1.." + MAX_LIMIT);
    return Database.inSnapshot(c, s -> {
      String[][] acc = owner.acc();
      long first = period == null || period.from() == null ? 0 : firstEntryAtOrAfter(s, period.from());
      long end = period == null || period.to() == null ? Long.MAX_VALUE : firstEntryAtOrAfter(s, period.to());
      long below = Math.min(before == null ? Long.MAX_VALUE : before, end);
      Amounts now = balances(s, acc);
      Summary summary = period == null ? null : summary(s, acc, period, first, end, now);
      // the newest limit + 1 entries of each account, merged: the page's entries are among them
      TreeSet<Long> ids = new TreeSet<>(java.util.Comparator.reverseOrder());
      for (String[] a : acc) {
        if (a == null) continue;
        try (PreparedStatement ps = s.prepareStatement("SELECT DISTINCT tx_id FROM posting WHERE account = ? AND denom = ?"
            + " AND tx_id < ? AND tx_id >= ? ORDER BY tx_id DESC FETCH FIRST " + (limit + 1) + " ROWS ONLY")) {
          ps.setString(1, a[0]);
          ps.setString(2, a[1]);
          ps.setLong(3, below);
          ps.setLong(4, first);
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) ids.add(rs.getLong(1));
          }
        }
      }
      List<Long> page = ids.stream().limit(limit).toList();
      Long next = ids.size() > limit ? page.get(page.size() - 1) : null;
      if (page.isEmpty()) return new Page(now, List.of(), null, summary);
      long oldest = page.get(page.size() - 1);
      TreeMap<Long, Amounts> changes = new TreeMap<>();
      for (int i = 0; i < acc.length; i++) {
        if (acc[i] == null) continue;
        try (PreparedStatement ps = s.prepareStatement("SELECT tx_id, SUM(amount) FROM posting WHERE account = ? AND denom = ?"
            + " AND tx_id >= ? AND tx_id < ? GROUP BY tx_id")) {
          ps.setString(1, acc[i][0]);
          ps.setString(2, acc[i][1]);
          ps.setLong(3, oldest);
          ps.setLong(4, below);
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) changes.merge(rs.getLong(1), single(i, rs.getLong(2)), Amounts::plus);
          }
        }
      }
      // the entries at or after 'below' (those of the pages before this one, and after the period) lead
      // from the page's end to now
      Amounts later = below == Long.MAX_VALUE ? Amounts.ZERO : changedSince(s, acc, below);
      Amounts after = now.minus(later);
      List<Entry> entries = new ArrayList<>();
      for (Entry e : describe(s, changes, owner.shared())) {
        entries.add(new Entry(e.txId(), e.kind(), e.ref(), e.at(), e.change(), after));
        after = after.minus(e.change());
      }
      return new Page(now, entries, next, summary);
    });
  }

  /** The summary of the period whose entries have ids in [{@code first}, {@code end}). */
  private static Summary summary(Connection c, String[][] acc, Period period, long first, long end, Amounts now)
      throws SQLException {
    Amounts closing = end == Long.MAX_VALUE ? now : now.minus(changedSince(c, acc, end));
    TreeMap<String, Amounts> changes = new TreeMap<>();
    for (int i = 0; i < acc.length; i++) {
      if (acc[i] == null) continue;
      try (PreparedStatement ps = c.prepareStatement("SELECT t.kind, SUM(p.amount) FROM posting p JOIN ledger_tx t ON t.id = p.tx_id"
          + " WHERE p.account = ? AND p.denom = ? AND p.tx_id >= ? AND p.tx_id < ? GROUP BY t.kind")) {
        ps.setString(1, acc[i][0]);
        ps.setString(2, acc[i][1]);
        ps.setLong(3, first);
        ps.setLong(4, end);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) changes.merge(rs.getString(1), single(i, rs.getLong(2)), Amounts::plus);
        }
      }
    }
    // an entry that moved several of the four balances counts once: the union of the four id ranges
    List<String[]> held = java.util.Arrays.stream(acc).filter(java.util.Objects::nonNull).toList();
    StringBuilder union = new StringBuilder();
    for (int i = 0; i < held.size(); i++) {
      if (i > 0) union.append(" UNION ");
      union.append("SELECT tx_id FROM posting WHERE account = ? AND denom = ? AND tx_id >= ? AND tx_id < ?");
    }
    TreeMap<String, Long> counts = new TreeMap<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT t.kind, COUNT(*) FROM (" + union + ") u JOIN ledger_tx t"
        + " ON t.id = u.tx_id GROUP BY t.kind")) {
      for (int i = 0; i < held.size(); i++) {
        ps.setString(4 * i + 1, held.get(i)[0]);
        ps.setString(4 * i + 2, held.get(i)[1]);
        ps.setLong(4 * i + 3, first);
        ps.setLong(4 * i + 4, end);
      }
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) counts.put(rs.getString(1), rs.getLong(2));
      }
    }
    List<KindTotal> totals = new ArrayList<>();
    Amounts change = Amounts.ZERO;
    long entries = 0;
    for (var k : counts.entrySet()) {
      Amounts kindChange = changes.getOrDefault(k.getKey(), Amounts.ZERO);
      totals.add(new KindTotal(k.getKey(), k.getValue(), kindChange));
      change = change.plus(kindChange);
      entries += k.getValue();
    }
    return new Summary(period, closing.minus(change), closing, entries, totals);
  }

  /**
   * The id of the first journal entry made at or after {@code t}, or one past the last entry when none
   * is: a binary search over ids (which the journal gives in the order it is written, and so, but for
   * entries committed concurrently by settlement lanes, in time order), skipping gaps in the ids.
   */
  static long firstEntryAtOrAfter(Connection c, Instant t) throws SQLException {
    long lo;
    long hi;
    try (PreparedStatement ps = c.prepareStatement("SELECT MIN(id), MAX(id) FROM ledger_tx"); ResultSet rs = ps.executeQuery()) {
      rs.next();
      if (rs.getObject(1) == null) return 1;
      lo = rs.getLong(1);
      hi = rs.getLong(2) + 1;
    }
    // entries with an id below lo were made before t, those from hi on at or after it
    try (PreparedStatement ps = c.prepareStatement("SELECT id, created_at FROM ledger_tx WHERE id >= ? AND id < ?"
        + " ORDER BY id FETCH FIRST 1 ROWS ONLY")) {
      while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        ps.setLong(1, mid);
        ps.setLong(2, hi);
        try (ResultSet rs = ps.executeQuery()) {
          if (!rs.next()) {
            hi = mid; // no entry in [mid, hi)
          } else if (rs.getTimestamp(2).toInstant().isBefore(t)) {
            lo = rs.getLong(1) + 1;
          } else {
            hi = rs.getLong(1);
          }
        }
      }
    }
    return hi;
  }

  /**
   * Entry {@code txId} if it moved the tenant's balances, with its balance after it and, for a
   * settlement, the tenant's runs it settled.
   */
  public static Optional<Detail> entry(Connection c, String tenantId, long txId) throws SQLException {
    return entry(c, Owner.tenant(tenantId), txId);
  }

  /**
   * Entry {@code txId} of node {@code nodeId}'s provider statement, with, for a settlement, the node's runs
   * it settled (their charges are what the node earned in it).
   */
  public static Optional<Detail> providerEntry(Connection c, String nodeId, long txId) throws SQLException {
    return entry(c, Owner.provider(nodeId), txId);
  }

  private static Optional<Detail> entry(Connection c, Owner owner, long txId) throws SQLException {
    return Database.inSnapshot(c, s -> {
      String[][] acc = owner.acc();
      Amounts change = Amounts.ZERO;
      boolean touched = false;
      for (int i = 0; i < acc.length; i++) {
        if (acc[i] == null) continue;
        try (PreparedStatement ps = s.prepareStatement(
            "SELECT SUM(amount), COUNT(*) FROM posting WHERE account = ? AND denom = ? AND tx_id = ?")) {
          ps.setString(1, acc[i][0]);
          ps.setString(2, acc[i][1]);
          ps.setLong(3, txId);
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            change = change.plus(single(i, rs.getLong(1)));
            touched |= rs.getLong(2) > 0;
          }
        }
      }
      List<SettledRun> runs = settledRuns(s, owner, txId);
      if (!touched && runs.isEmpty()) return Optional.empty();
      TreeMap<Long, Amounts> one = new TreeMap<>();
      one.put(txId, change);
      Entry e = describe(s, one, owner.shared()).get(0);
      Amounts after = balances(s, acc).minus(changedSince(s, acc, txId + 1));
      List<HeldJob> holds = e.kind().equals("escrow.hold") && owner.runsOf().equals("tenant_id") ? heldJobs(s, owner.id(), txId)
          : List.of();
      return Optional.of(new Detail(new Entry(e.txId(), e.kind(), e.ref(), e.at(), change, after), runs, holds));
    });
  }

  /** What the entries from id {@code fromTx} on changed (an indexed range per account, as long as those entries). */
  private static Amounts changedSince(Connection c, String[][] acc, long fromTx) throws SQLException {
    Amounts sum = Amounts.ZERO;
    for (int i = 0; i < acc.length; i++) {
      if (acc[i] == null) continue;
      try (PreparedStatement ps = c.prepareStatement(
          "SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account = ? AND denom = ? AND tx_id >= ?")) {
        ps.setString(1, acc[i][0]);
        ps.setString(2, acc[i][1]);
        ps.setLong(3, fromTx);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          sum = sum.plus(single(i, rs.getLong(1)));
        }
      }
    }
    return sum;
  }

  private static List<SettledRun> settledRuns(Connection c, Owner owner, long txId) throws SQLException {
    List<SettledRun> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT receipt_id, job_id, node_id, charge_uact, refund_uact, paid_uakt"
        + " FROM settlement WHERE tx_id = ? AND " + owner.runsOf() + " = ? ORDER BY receipt_id")) {
      ps.setLong(1, txId);
      ps.setString(2, owner.id());
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(new SettledRun(rs.getString(1), rs.getString(2), rs.getString(3), rs.getLong(4), rs.getLong(5), rs.getLong(6)));
        }
      }
    }
    return out;
  }

  /** Tenant {@code tenantId}'s jobs held by hold entry {@code txId} (V22), with what each holds. */
  private static List<HeldJob> heldJobs(Connection c, String tenantId, long txId) throws SQLException {
    List<HeldJob> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT h.job_id, e.amount_uact, e.held_uakt FROM escrow_hold_job h"
        + " JOIN escrow e ON e.job_id = h.job_id WHERE h.tx_id = ? AND e.tenant_id = ? ORDER BY h.job_id")) {
      ps.setLong(1, txId);
      ps.setString(2, tenantId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          boolean inAkt = rs.getLong(3) > 0;
          out.add(new HeldJob(rs.getString(1), inAkt ? 0 : rs.getLong(2), rs.getLong(3)));
        }
      }
    }
    return out;
  }

  private static Amounts single(int index, long amount) {
    return switch (index) {
      case 0 -> new Amounts(amount, 0, 0, 0);
      case 1 -> new Amounts(0, amount, 0, 0);
      case 2 -> new Amounts(0, 0, amount, 0);
      default -> new Amounts(0, 0, 0, amount);
    };
  }

  private static Amounts balances(Connection c, String[][] acc) throws SQLException {
    long[] b = new long[acc.length];
    for (int i = 0; i < acc.length; i++) b[i] = acc[i] == null ? 0 : SqlLedger.balance(c, acc[i][0], acc[i][1]);
    return new Amounts(b[0], b[1], b[2], b[3]);
  }

  /** The entries of {@code changes}, newest first, with their kind, reference (where the tenant's) and time. */
  private static List<Entry> describe(Connection c, TreeMap<Long, Amounts> changes, java.util.Set<String> shared)
      throws SQLException {
    List<Entry> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT kind, ref, created_at FROM ledger_tx WHERE id = ?")) {
      for (var e : changes.descendingMap().entrySet()) {
        ps.setLong(1, e.getKey());
        try (ResultSet rs = ps.executeQuery()) {
          if (!rs.next()) throw new SQLException("journal entry " + e.getKey() + " has postings but no entry");
          String kind = rs.getString(1);
          out.add(new Entry(e.getKey(), kind, shared.contains(kind) ? null : rs.getString(2),
              rs.getTimestamp(3).toInstant(), e.getValue(), null));
        }
      }
    }
    return out;
  }
}
