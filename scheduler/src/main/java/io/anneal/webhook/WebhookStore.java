package io.anneal.webhook;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Webhooks and their deliveries on the job store's SQL database (H2 or PostgreSQL). */
public final class WebhookStore {
  /** Job states a webhook may subscribe to, as {@code job.<state>}; {@code *} is all of them. */
  public static final Set<String> JOB_EVENT_TYPES = Set.of("job.queued", "job.placed", "job.running", "job.succeeded",
      "job.failed", "job.cancelled", "job.preempted", "job.settled");
  /** A closed accounting epoch's totals and Merkle root; asked for by name ({@code *} is the job events). */
  public static final String EPOCH_CLOSED = "epoch.closed";
  /**
   * The tenant's ACT available fell below the webhook's {@code lowBalanceAct} (ADR 28); asked for by name,
   * told once each time it falls.
   */
  public static final String BALANCE_LOW = "balance.low";
  /** A tenant's deposit converted into ACT at a mint epoch, or given back; asked for by name. */
  public static final String DEPOSIT_EXECUTED = "deposit.executed";
  public static final String DEPOSIT_CANCELLED = "deposit.cancelled";
  /**
   * A payout of one of a provider account's nodes executed (AKT paid) or cancelled (its ACT given back)
   * at a redemption epoch (ADR 32): the events of a provider account's webhooks, and theirs only.
   */
  public static final String PAYOUT_EXECUTED = "payout.executed";
  public static final String PAYOUT_CANCELLED = "payout.cancelled";
  public static final Set<String> PROVIDER_EVENT_TYPES = Set.of(PAYOUT_EXECUTED, PAYOUT_CANCELLED);
  /** Every event a tenant's webhook may ask for. */
  public static final Set<String> EVENT_TYPES = java.util.stream.Stream.concat(JOB_EVENT_TYPES.stream(),
      java.util.stream.Stream.of(EPOCH_CLOSED, BALANCE_LOW, DEPOSIT_EXECUTED, DEPOSIT_CANCELLED))
      .collect(java.util.stream.Collectors.toUnmodifiableSet());

  private WebhookStore() {}

  /** {@code lowBalanceUact}: the threshold of a webhook that asked for {@link #BALANCE_LOW}, else null. */
  public record Webhook(String id, String tenantId, String url, Set<String> events, String secret, long createdAt,
      Long lowBalanceUact, boolean lowBalanceTold) {
    public Webhook(String id, String tenantId, String url, Set<String> events, String secret, long createdAt,
        Long lowBalanceUact) {
      this(id, tenantId, url, events, secret, createdAt, lowBalanceUact, false);
    }

    public Webhook {
      if (events.contains(BALANCE_LOW) != (lowBalanceUact != null)) {
        throw new IllegalArgumentException("a balance.low webhook, and only one, has a low-balance threshold");
      }
      if (lowBalanceUact != null && lowBalanceUact <= 0) throw new IllegalArgumentException("lowBalanceUact must be > 0");
    }

    public boolean wants(String type) {
      return events.contains(type) || (events.contains("*") && JOB_EVENT_TYPES.contains(type));
    }

    /** The API view: never the secret. */
    public Map<String, Object> toApi() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("id", id);
      m.put("url", url);
      m.put("events", List.copyOf(events));
      m.put("createdAt", createdAt);
      if (lowBalanceUact != null) {
        m.put("lowBalanceAct", java.math.BigDecimal.valueOf(lowBalanceUact, 6).stripTrailingZeros().toPlainString());
        m.put("balanceLow", lowBalanceTold); // told it fell below, not back at or above since
      }
      return m;
    }
  }

  /** A delivery to make: one event for one webhook. */
  public record NewDelivery(String webhookId, String eventId, String type, String body, long createdAt) {}

  /** A delivery due now, with what is needed to send it. */
  public record Due(long id, String webhookId, String url, String secret, String eventId, String type, String body,
      int attempts) {}

  /**
   * Removes up to {@code limit} deliveries made before {@code cutoffMs} that have ended (delivered, failed
   * for good, or cancelled with their webhook): the delivery log keeps what retention keeps. Returns how many.
   */
  public static int removeEndedBefore(Connection c, long cutoffMs, int limit) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("DELETE FROM webhook_delivery WHERE id IN (SELECT id FROM webhook_delivery"
        + " WHERE state IN ('DELIVERED', 'FAILED', 'CANCELLED') AND created_at < ? FETCH FIRST " + limit + " ROWS ONLY)")) {
      ps.setLong(1, cutoffMs);
      return ps.executeUpdate();
    }
  }

  /** Registers a webhook; epochs closed before now are not sent to it, those closed later are. */
  public static void insert(Connection c, Webhook w) throws SQLException {
    long decided = io.anneal.billing.ledger.Mints.lastDecisionTx(c);
    long paid = io.anneal.billing.ledger.Redemptions.lastDecisionTx(c);
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO webhook (id, tenant_id, url, events, secret, active,"
        + " created_at, epochs_after_ms, low_balance_uact, deposits_after_tx, payouts_after_tx) SELECT ?, ?, ?, ?, ?, TRUE, ?,"
        + " COALESCE(MAX(ends_at_ms), 0), ?, " + decided + ", " + paid + " FROM epoch_close")) {
      ps.setString(1, w.id());
      ps.setString(2, w.tenantId());
      ps.setString(3, w.url());
      ps.setString(4, String.join(",", w.events()));
      ps.setString(5, w.secret());
      ps.setLong(6, w.createdAt());
      if (w.lowBalanceUact() == null) ps.setNull(7, Types.BIGINT);
      else ps.setLong(7, w.lowBalanceUact());
      ps.executeUpdate();
    }
  }

  /** Active webhooks, of one tenant or (tenantId null) of all. */
  public static List<Webhook> active(Connection c, String tenantId) throws SQLException {
    String sql = "SELECT id, tenant_id, url, events, secret, created_at, low_balance_uact, low_balance_told FROM webhook"
        + " WHERE active = TRUE"
        + (tenantId == null ? "" : " AND tenant_id = ?") + " ORDER BY created_at, id";
    List<Webhook> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      if (tenantId != null) ps.setString(1, tenantId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          long low = rs.getLong(7);
          Long lowBalance = rs.wasNull() ? null : low;
          out.add(new Webhook(rs.getString(1), rs.getString(2), rs.getString(3),
              new LinkedHashSet<>(Arrays.asList(rs.getString(4).split(","))), rs.getString(5), rs.getLong(6),
              lowBalance, rs.getBoolean(8)));
        }
      }
    }
    return out;
  }

  /**
   * The {@code balance.low} webhooks whose tenant's ACT available crossed their threshold since they were
   * last told: below it and not told yet, or told and back at or above it. A read: the writer is used only
   * when one of them has to change.
   */
  public static boolean lowBalancesChanged(Connection c) throws SQLException {
    return !lowBalanceCrossings(c).isEmpty();
  }

  /** {webhook id, tenant id, threshold, balance now, told} of the webhooks whose side of their threshold changed. */
  private static List<Object[]> lowBalanceCrossings(Connection c) throws SQLException {
    List<Object[]> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT w.id, w.tenant_id, w.low_balance_uact, COALESCE(b.amount, 0),"
        + " w.low_balance_told FROM webhook w LEFT JOIN balance b ON b.account = CONCAT('tenant:', w.tenant_id)"
        + " AND b.denom = 'uact' WHERE w.active = TRUE AND w.low_balance_uact IS NOT NULL")) {
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          boolean below = rs.getLong(4) < rs.getLong(3);
          if (below != rs.getBoolean(5)) {
            out.add(new Object[] {rs.getString(1), rs.getString(2), rs.getLong(3), rs.getLong(4), rs.getBoolean(5)});
          }
        }
      }
    }
    return out;
  }

  /**
   * Tells each {@code balance.low} webhook whose tenant's ACT available fell below its threshold (one
   * delivery, written with the webhook's "told" mark in the caller's transaction), and re-arms those whose
   * tenant is back at or above it. Returns how many deliveries were written.
   */
  public static int enqueueLowBalances(Connection c, long nowMs) throws SQLException {
    List<NewDelivery> out = new ArrayList<>();
    for (Object[] w : lowBalanceCrossings(c)) {
      boolean fell = !(Boolean) w[4];
      try (PreparedStatement ps = c.prepareStatement(
          "UPDATE webhook SET low_balance_told = ? WHERE id = ? AND low_balance_told = ?")) {
        ps.setBoolean(1, fell);
        ps.setString(2, (String) w[0]);
        ps.setBoolean(3, !fell);
        if (ps.executeUpdate() == 0 || !fell) continue; // changed meanwhile, or re-armed: nothing to tell
      }
      String eventId = "evt_" + java.util.UUID.randomUUID().toString().replace("-", "");
      String tenantId = (String) w[1];
      // as /api/v1/me shows it
      var balance = new io.vertx.core.json.JsonObject(io.anneal.billing.ledger.AccountStatement.balancesOf(c, tenantId).toMap());
      var data = new io.vertx.core.json.JsonObject().put("tenantId", tenantId).put("balance", balance)
          .put("lowBalanceUact", (Long) w[2]).put("at", nowMs);
      out.add(new NewDelivery((String) w[0], eventId, BALANCE_LOW, new io.vertx.core.json.JsonObject().put("id", eventId)
          .put("type", BALANCE_LOW).put("createdAt", nowMs).put("data", data).encode(), nowMs));
    }
    if (!out.isEmpty()) enqueue(c, out);
    return out.size();
  }

  /**
   * Deactivates a tenant's webhook and cancels its pending deliveries (the log stays). False if the
   * tenant has no such active webhook.
   */
  public static boolean deactivate(Connection c, String tenantId, String id) throws SQLException {
    int n;
    try (PreparedStatement ps = c.prepareStatement(
        "UPDATE webhook SET active = FALSE WHERE id = ? AND tenant_id = ? AND active = TRUE")) {
      ps.setString(1, id);
      ps.setString(2, tenantId);
      n = ps.executeUpdate();
    }
    if (n == 0) return false;
    try (PreparedStatement ps = c.prepareStatement(
        "UPDATE webhook_delivery SET state = 'CANCELLED', last_error = 'webhook deleted' WHERE webhook_id = ? AND state = 'PENDING'")) {
      ps.setString(1, id);
      ps.executeUpdate();
    }
    return true;
  }

  /** Whether the tenant owns the webhook (active or not). */
  public static boolean owns(Connection c, String tenantId, String id) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM webhook WHERE id = ? AND tenant_id = ?")) {
      ps.setString(1, id);
      ps.setString(2, tenantId);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next();
      }
    }
  }

  /** Whether a webhook that asked for {@code epoch.closed} has not been given the last closed epoch yet (a read). */
  public static boolean epochsOwed(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM webhook WHERE active = TRUE AND events LIKE ?"
        + " AND epochs_after_ms < (SELECT COALESCE(MAX(ends_at_ms), 0) FROM epoch_close)")) {
      ps.setString(1, "%" + EPOCH_CLOSED + "%");
      ps.setMaxRows(1);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next();
      }
    }
  }

  /**
   * The {@code epoch.closed} deliveries owed to the webhooks that asked for them: every epoch closed
   * after each one's cursor (oldest first, at most {@code limit} per webhook), written with the
   * cursor's move in the caller's transaction. Returns how many were written.
   */
  public static int enqueueClosedEpochs(Connection c, long nowMs, int limit) throws SQLException {
    List<String[]> hooks = new ArrayList<>(); // id, cursor
    try (PreparedStatement ps = c.prepareStatement("SELECT id, epochs_after_ms, events FROM webhook WHERE active = TRUE"
        + " AND events LIKE ?")) {
      ps.setString(1, "%" + EPOCH_CLOSED + "%");
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          if (Arrays.asList(rs.getString(3).split(",")).contains(EPOCH_CLOSED)) {
            hooks.add(new String[] {rs.getString(1), Long.toString(rs.getLong(2))});
          }
        }
      }
    }
    int written = 0;
    for (String[] h : hooks) {
      List<NewDelivery> out = new ArrayList<>();
      long cursor = Long.parseLong(h[1]);
      // the epoch as GET /api/v1/epochs lists it, in the envelope of job events; the event id names the
      // epoch, so a receiver keeps one copy
      for (io.anneal.billing.ledger.SqlLedger.EpochClose e : io.anneal.billing.ledger.SqlLedger.epochsEndingAfter(c, cursor, limit)) {
        String eventId = "ep_" + e.epoch();
        String body = new io.vertx.core.json.JsonObject().put("id", eventId).put("type", EPOCH_CLOSED).put("createdAt", nowMs)
            .put("data", io.vertx.core.json.JsonObject.mapFrom(e)).encode();
        out.add(new NewDelivery(h[0], eventId, EPOCH_CLOSED, body, nowMs));
        cursor = e.endsAtMs();
      }
      if (out.isEmpty()) continue;
      enqueue(c, out);
      try (PreparedStatement ps = c.prepareStatement("UPDATE webhook SET epochs_after_ms = ? WHERE id = ?")) {
        ps.setLong(1, cursor);
        ps.setString(2, h[0]);
        ps.executeUpdate();
      }
      written += out.size();
    }
    return written;
  }

  /** Decisions of one owner after a journal entry, in the order decided (at most {@code limit}). */
  private interface DecidedAfter {
    List<io.anneal.billing.ledger.Mints.Decided> read(Connection c, String owner, long afterTx, int limit) throws SQLException;
  }

  /**
   * Events told once per decision of an owner's requests, from a cursor per webhook over the deciding
   * journal entries: deposits (a tenant's, decided at mint epochs) and payouts (a provider account's
   * nodes', decided at redemption epochs).
   */
  private record DecisionEvents(String executed, String cancelled, String cursorColumn, String eventPrefix, String idField,
      String ownerField, DecidedAfter decided) {}

  private static final DecisionEvents DEPOSITS = new DecisionEvents(DEPOSIT_EXECUTED, DEPOSIT_CANCELLED, "deposits_after_tx",
      "dep_", "requestId", "tenantId", io.anneal.billing.ledger.Mints::decidedAfter);
  private static final DecisionEvents PAYOUTS = new DecisionEvents(PAYOUT_EXECUTED, PAYOUT_CANCELLED, "payouts_after_tx",
      "po_", "id", "providerAccountId",
      (c, account, after, limit) -> io.anneal.billing.ledger.Redemptions.decidedAfter(c, nodesOf(c, account), after, limit));

  /** The active webhooks that asked for one of {@code e}'s events: {id, owner id, cursor, events}. */
  private static List<Object[]> hooksOf(Connection c, DecisionEvents e) throws SQLException {
    List<Object[]> hooks = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT id, tenant_id, " + e.cursorColumn() + ", events FROM webhook"
        + " WHERE active = TRUE AND events LIKE ?")) {
      ps.setString(1, "%" + e.executed().substring(0, e.executed().indexOf('.') + 1) + "%");
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          Set<String> events = new LinkedHashSet<>(Arrays.asList(rs.getString(4).split(",")));
          if (events.contains(e.executed()) || events.contains(e.cancelled())) {
            hooks.add(new Object[] {rs.getString(1), rs.getString(2), rs.getLong(3), events});
          }
        }
      }
    }
    return hooks;
  }

  /** The nodes of provider account {@code accountId} now. */
  private static List<String> nodesOf(Connection c, String accountId) throws SQLException {
    List<String> nodes = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT node_id FROM provider_node WHERE account_id = ? ORDER BY node_id")) {
      ps.setString(1, accountId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) nodes.add(rs.getString(1));
      }
    }
    return nodes;
  }

  private static boolean owed(Connection c, DecisionEvents e) throws SQLException {
    for (Object[] h : hooksOf(c, e)) {
      if (!e.decided().read(c, (String) h[1], (Long) h[2], 1).isEmpty()) return true;
    }
    return false;
  }

  /**
   * The deliveries of {@code e}'s events owed: each decision of the webhook's owner after its cursor (at
   * most {@code limit} per webhook, in the order decided), written with the cursor's move in the caller's
   * transaction; a decision of a kind the webhook did not ask for moves the cursor without a delivery.
   * Returns how many were written.
   */
  @SuppressWarnings("unchecked")
  private static int enqueueDecided(Connection c, DecisionEvents e, long nowMs, int limit) throws SQLException {
    int written = 0;
    for (Object[] h : hooksOf(c, e)) {
      long cursor = (Long) h[2];
      List<NewDelivery> out = new ArrayList<>();
      for (io.anneal.billing.ledger.Mints.Decided d : e.decided().read(c, (String) h[1], cursor, limit)) {
        cursor = d.txId();
        String type = "EXECUTED".equals(d.status().get("state")) ? e.executed() : e.cancelled();
        if (!((Set<String>) h[3]).contains(type)) continue;
        // one event per decision: its id names the request, so a receiver keeps one copy
        String eventId = e.eventPrefix() + d.status().get(e.idField());
        io.vertx.core.json.JsonObject data = new io.vertx.core.json.JsonObject(new LinkedHashMap<>(d.status()))
            .put(e.ownerField(), h[1]);
        out.add(new NewDelivery((String) h[0], eventId, type, new io.vertx.core.json.JsonObject().put("id", eventId)
            .put("type", type).put("createdAt", nowMs).put("data", data).encode(), nowMs));
      }
      if (cursor == (Long) h[2]) continue;
      if (!out.isEmpty()) enqueue(c, out);
      try (PreparedStatement ps = c.prepareStatement("UPDATE webhook SET " + e.cursorColumn() + " = ? WHERE id = ?")) {
        ps.setLong(1, cursor);
        ps.setString(2, (String) h[0]);
        ps.executeUpdate();
      }
      written += out.size();
    }
    return written;
  }

  /** Whether a webhook that asked for a deposit event has a decision of its tenant not told yet (a read). */
  public static boolean depositsOwed(Connection c) throws SQLException {
    return owed(c, DEPOSITS);
  }

  /**
   * The {@code deposit.executed} / {@code deposit.cancelled} deliveries owed: each deposit of the webhook's
   * tenant decided after its cursor. Returns how many were written.
   */
  public static int enqueueDeposits(Connection c, long nowMs, int limit) throws SQLException {
    return enqueueDecided(c, DEPOSITS, nowMs, limit);
  }

  /** Whether a payout webhook has a payout of its account's nodes decided and not told yet (a read). */
  public static boolean payoutsOwed(Connection c) throws SQLException {
    return owed(c, PAYOUTS);
  }

  /**
   * The {@code payout.executed} / {@code payout.cancelled} deliveries owed (ADR 32): each payout of the
   * account's nodes (those it has now) decided after the webhook's cursor. Returns how many were written.
   */
  public static int enqueuePayouts(Connection c, long nowMs, int limit) throws SQLException {
    return enqueueDecided(c, PAYOUTS, nowMs, limit);
  }

  public static void enqueue(Connection c, List<NewDelivery> deliveries) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO webhook_delivery (webhook_id, event_id, event_type, body,"
        + " state, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'PENDING', 0, ?, ?)")) {
      for (NewDelivery d : deliveries) {
        ps.setString(1, d.webhookId());
        ps.setString(2, d.eventId());
        ps.setString(3, d.type());
        ps.setString(4, d.body());
        ps.setLong(5, d.createdAt());
        ps.setLong(6, d.createdAt());
        ps.addBatch();
      }
      ps.executeBatch();
    }
  }

  /**
   * The deliveries that job state changes owe to the tenants' webhooks, written in the transaction
   * of the changes themselves ({@link io.anneal.store.JobStore.TransitionListener}), so that an event
   * whose state change committed is never without its deliveries. {@code byTenant} is the current
   * set of active webhooks; with none, this reads and writes nothing. Returns how many were written.
   */
  public static int enqueueFor(Connection c, Map<String, List<Webhook>> byTenant,
      List<io.anneal.store.JobStore.Transition> transitions) throws SQLException {
    if (byTenant.isEmpty()) return 0;
    Map<String, String> tenantOf = new java.util.HashMap<>();
    try (PreparedStatement ps = c.prepareStatement(io.anneal.billing.sql.Database.keyed(c, "t.id, t.tenant_id", "job", "id",
        null))) {
      ps.setArray(1, c.createArrayOf("varchar", transitions.stream().map(io.anneal.store.JobStore.Transition::jobId)
          .distinct().toArray(String[]::new)));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) tenantOf.put(rs.getString(1), rs.getString(2));
      }
    }
    long now = System.currentTimeMillis();
    List<NewDelivery> out = new ArrayList<>();
    for (io.anneal.store.JobStore.Transition t : transitions) {
      List<Webhook> hooks = byTenant.get(tenantOf.get(t.jobId()));
      if (hooks == null) continue;
      String type = "job." + t.state().name().toLowerCase(java.util.Locale.ROOT);
      String body = null;
      String eventId = null;
      for (Webhook w : hooks) {
        if (!w.wants(type)) continue;
        if (body == null) {
          eventId = "evt_" + java.util.UUID.randomUUID().toString().replace("-", "");
          io.vertx.core.json.JsonObject data = new io.vertx.core.json.JsonObject().put("jobId", t.jobId())
              .put("state", t.state().name()).put("at", t.at());
          t.data().forEach(data::put);
          body = new io.vertx.core.json.JsonObject().put("id", eventId).put("type", type).put("createdAt", now)
              .put("data", data).encode();
        }
        out.add(new NewDelivery(w.id(), eventId, type, body, now));
      }
    }
    if (!out.isEmpty()) enqueue(c, out);
    return out.size();
  }

  /** Pending deliveries whose time has come, oldest first, of active webhooks. */
  public static List<Due> due(Connection c, long nowMs, int limit) throws SQLException {
    List<Due> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT d.id, d.webhook_id, w.url, w.secret, d.event_id, d.event_type,"
        + " d.body, d.attempts FROM webhook_delivery d JOIN webhook w ON w.id = d.webhook_id"
        + " WHERE d.state = 'PENDING' AND d.next_attempt_at <= ? AND w.active = TRUE ORDER BY d.next_attempt_at, d.id")) {
      ps.setLong(1, nowMs);
      ps.setMaxRows(limit);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(new Due(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5),
              rs.getString(6), rs.getString(7), rs.getInt(8)));
        }
      }
    }
    return out;
  }

  /** Records one attempt: delivered, retried at {@code nextAttemptAt}, or (nextAttemptAt < 0) failed for good. */
  public static void attempted(Connection c, long id, boolean delivered, Integer status, String error, long nowMs,
      long nextAttemptAt) throws SQLException {
    String state = delivered ? "DELIVERED" : nextAttemptAt < 0 ? "FAILED" : "PENDING";
    try (PreparedStatement ps = c.prepareStatement("UPDATE webhook_delivery SET state = ?, attempts = attempts + 1,"
        + " last_status = ?, last_error = ?, next_attempt_at = ?, delivered_at = ? WHERE id = ? AND state = 'PENDING'")) {
      ps.setString(1, state);
      if (status == null) ps.setNull(2, Types.INTEGER);
      else ps.setInt(2, status);
      ps.setString(3, error == null ? null : error.length() > 500 ? error.substring(0, 500) : error);
      ps.setLong(4, Math.max(nextAttemptAt, 0));
      if (delivered) ps.setLong(5, nowMs);
      else ps.setNull(5, Types.BIGINT);
      ps.setLong(6, id);
      ps.executeUpdate();
    }
  }

  /** The delivery log of a webhook, newest first. */
  public static List<Map<String, Object>> deliveries(Connection c, String webhookId, int limit) throws SQLException {
    List<Map<String, Object>> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement("SELECT id, event_id, event_type, state, attempts, last_status,"
        + " last_error, created_at, next_attempt_at, delivered_at FROM webhook_delivery WHERE webhook_id = ?"
        + " ORDER BY id DESC")) {
      ps.setString(1, webhookId);
      ps.setMaxRows(limit);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          Map<String, Object> m = new LinkedHashMap<>();
          m.put("id", rs.getLong(1));
          m.put("eventId", rs.getString(2));
          m.put("type", rs.getString(3));
          m.put("state", rs.getString(4));
          m.put("attempts", rs.getInt(5));
          int status = rs.getInt(6);
          m.put("lastStatus", rs.wasNull() ? null : status);
          m.put("lastError", rs.getString(7));
          m.put("createdAt", rs.getLong(8));
          if ("PENDING".equals(m.get("state"))) m.put("nextAttemptAt", rs.getLong(9));
          long delivered = rs.getLong(10);
          if (!rs.wasNull()) m.put("deliveredAt", delivered);
          out.add(m);
        }
      }
    }
    return out;
  }
}
