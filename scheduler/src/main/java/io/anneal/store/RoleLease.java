package io.anneal.store;

import io.anneal.billing.sql.Database;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;

/**
 * The lease of a role only one instance of a cluster may play at a time (ADR 19): a PostgreSQL session
 * advisory lock, held on a connection of its own for as long as the role is played, plus a fencing
 * epoch in {@code role_lease} that each new holder bumps. The lock goes when its session does (the
 * holder stopped, crashed, or lost the server); the epoch makes sure that a holder which has not
 * noticed yet gets none of its writes in: they check it (see {@link #epochForShare}). Blocking: call
 * off the event loop. Not thread-safe beyond its own synchronized methods.
 */
public final class RoleLease implements AutoCloseable {
  private final String jdbcUrl;
  private final String schema;
  private final String role;
  private final String holder;
  private Connection held;
  private volatile long epoch = -1;

  /** The lease of {@code role} in {@code db}'s schema (leases of other schemas do not collide). */
  public RoleLease(Database db, String role, String holder) {
    if (!db.postgres()) throw new IllegalArgumentException("role leases need PostgreSQL");
    this.jdbcUrl = db.jdbcUrl();
    this.schema = db.schema();
    this.role = role;
    this.holder = holder;
  }

  public String role() {
    return role;
  }

  /** The fencing epoch while held, else -1. */
  public long epoch() {
    return epoch;
  }

  public synchronized boolean held() {
    return held != null;
  }

  /** Takes the lease if nobody holds it; true if this instance holds it now (the epoch then bumped). */
  public synchronized boolean tryAcquire() throws SQLException {
    if (held != null) return true;
    java.util.Properties props = new java.util.Properties();
    // shown in pg_stat_activity: an operator sees which instance holds which role
    String app = "anneal lease " + role + " " + holder;
    props.setProperty("ApplicationName", app.length() > 63 ? app.substring(0, 63) : app);
    Connection c = DriverManager.getConnection(jdbcUrl, props);
    boolean ok = false;
    try {
      if (schema != null) c.setSchema(schema);
      try (PreparedStatement ps = c.prepareStatement("SELECT pg_try_advisory_lock(hashtext(?))")) {
        ps.setString(1, lockName());
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          if (!rs.getBoolean(1)) return false;
        }
      }
      long e;
      // waits for writes that hold the old epoch FOR SHARE: they commit first, or see the new one
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO role_lease (role, epoch, holder, acquired_at)"
          + " VALUES (?, 1, ?, ?) ON CONFLICT (role) DO UPDATE SET epoch = role_lease.epoch + 1,"
          + " holder = EXCLUDED.holder, acquired_at = EXCLUDED.acquired_at RETURNING epoch")) {
        ps.setString(1, role);
        ps.setString(2, holder);
        ps.setLong(3, System.currentTimeMillis());
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          e = rs.getLong(1);
        }
      }
      held = c;
      epoch = e;
      ok = true;
      return true;
    } finally {
      if (!ok) closeQuietly(c);
    }
  }

  /**
   * Whether the lease is still this instance's: its session answers within {@code timeoutMs} and the
   * epoch is still the one it took. When not, the lease is let go (its connection closed) and false
   * returned; the holder must stop playing the role at once.
   */
  public synchronized boolean stillHeld(int timeoutMs) {
    if (held == null) return false;
    try {
      held.setNetworkTimeout(Runnable::run, timeoutMs);
      try (PreparedStatement ps = held.prepareStatement("SELECT epoch FROM role_lease WHERE role = ?")) {
        ps.setString(1, role);
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next() && rs.getLong(1) == epoch) return true;
        }
      }
    } catch (SQLException e) {
      // the session is gone or does not answer: the server releases its lock (or already has)
    }
    release();
    return false;
  }

  /** Lets the lease go (closing its session releases the lock). */
  public synchronized void release() {
    if (held == null) return;
    closeQuietly(held);
    held = null;
    epoch = -1;
  }

  @Override
  public void close() {
    release();
  }

  private String lockName() {
    return "anneal:" + (schema == null ? "" : schema) + ":" + role;
  }

  /**
   * The role's current epoch, read {@code FOR SHARE} in the caller's transaction: a new holder's bump
   * waits for that transaction, so what it writes is either in before the new holder starts or
   * checked against the new epoch. Null when the role was never held.
   */
  public static Long epochForShare(Connection c, String role) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT epoch FROM role_lease WHERE role = ? FOR SHARE")) {
      ps.setString(1, role);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? rs.getLong(1) : null;
      }
    }
  }

  /** A role's lease as stored: its last holder, and whether that holder's session holds it now. */
  public record Held(String role, long epoch, String holder, long acquiredAt, boolean heldNow) {}

  /**
   * Every role's lease (PostgreSQL; empty where no instance ever held one, as on a single instance).
   * {@code heldNow}: the holder's lease session is open (named in {@code pg_stat_activity}).
   */
  public static java.util.List<Held> all(Connection c) throws SQLException {
    java.util.List<Held> out = new java.util.ArrayList<>();
    boolean postgres = !Database.isH2(c);
    String sql = "SELECT role, epoch, holder, acquired_at, "
        + (postgres ? "EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = current_database()"
            + " AND a.application_name = LEFT('anneal lease ' || role || ' ' || holder, 63))" : "FALSE")
        + " FROM role_lease ORDER BY role";
    try (PreparedStatement ps = c.prepareStatement(sql); ResultSet rs = ps.executeQuery()) {
      while (rs.next()) out.add(new Held(rs.getString(1), rs.getLong(2), rs.getString(3), rs.getLong(4), rs.getBoolean(5)));
    }
    return out;
  }

  private static void closeQuietly(Connection c) {
    try {
      c.close();
    } catch (SQLException ignored) {
      // closing a connection that failed
    }
  }
}
