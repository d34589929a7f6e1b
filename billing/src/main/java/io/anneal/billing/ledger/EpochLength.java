package io.anneal.billing.ledger;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Optional;

/**
 * Whether a ledger's accounting epochs are of the length a service is configured with. A settlement is
 * filed in the epoch of its settlement time ({@code settled_at} divided by the length) and an epoch
 * closes once its time has passed, so a ledger read with another length than it was written with closes
 * its epochs over the wrong times or never: its totals, ratios and roots come out wrong without an error.
 * A service refuses to start on such a ledger instead.
 */
public final class EpochLength {
  private EpochLength() {}

  /**
   * Empty when the ledger's epochs are {@code epochSeconds} long, or it has none yet; otherwise what is
   * wrong, naming the length the ledger was written with where it can tell. Reads the latest closed epoch
   * and the latest settlement's epoch (two indexed reads).
   */
  public static Optional<String> mismatch(Connection c, long epochSeconds) throws SQLException {
    if (epochSeconds <= 0) throw new IllegalArgumentException("epoch length must be positive, not " + epochSeconds);
    try (PreparedStatement ps = c.prepareStatement("SELECT epoch, epoch_seconds FROM epoch_close ORDER BY epoch DESC LIMIT 1");
        ResultSet rs = ps.executeQuery()) {
      if (rs.next() && rs.getLong(2) != epochSeconds) {
        return Optional.of(problem(epochSeconds, "its latest closed epoch, " + rs.getLong(1) + ", is " + rs.getLong(2)
            + " s long", rs.getLong(2)));
      }
    }
    Long epoch = null;
    try (PreparedStatement ps = c.prepareStatement("SELECT MAX(epoch) FROM settlement"); ResultSet rs = ps.executeQuery()) {
      if (rs.next()) {
        long e = rs.getLong(1);
        if (!rs.wasNull()) epoch = e;
      }
    }
    if (epoch == null) return Optional.empty();
    long settledAtMs;
    try (PreparedStatement ps = c.prepareStatement("SELECT settled_at FROM settlement WHERE epoch = ? LIMIT 1")) {
      ps.setLong(1, epoch);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        settledAtMs = rs.getTimestamp(1).getTime();
      }
    }
    if (within(settledAtMs, epoch, epochSeconds)) return Optional.empty();
    // the length that files that settlement in that epoch, if a whole number of seconds does
    long guess = epoch <= 0 ? 0 : Math.round(settledAtMs / 1000.0 / (epoch + 0.5));
    boolean fits = guess > 0 && within(settledAtMs, epoch, guess);
    return Optional.of(problem(epochSeconds, "its latest settlement, at " + java.time.Instant.ofEpochMilli(settledAtMs)
        + ", is filed in epoch " + epoch + ", which is not that time's epoch with epochs of " + epochSeconds + " s",
        fits ? guess : null));
  }

  /**
   * Settlements written before the settlement time was read after the barrier carry their transaction's
   * start, up to the barrier's wait before their epoch's time; a minute of slack keeps those from failing
   * the check, while another length puts the latest epoch hours or years away.
   */
  static final long SLACK_MS = 60_000;

  private static boolean within(long atMs, long epoch, long epochSeconds) {
    long startMs = epoch * epochSeconds * 1000;
    return atMs >= startMs - SLACK_MS && atMs < startMs + epochSeconds * 1000 + SLACK_MS;
  }

  private static String problem(long epochSeconds, String why, Long length) {
    return "--epoch-seconds " + epochSeconds + " (ANNEAL_EPOCH_SECONDS) does not match the ledger's accounting epochs: "
        + why + (length == null ? "" : "; start with --epoch-seconds " + length)
        + ". The epochs of an existing ledger keep the length they were written with (a ledger read with another"
        + " one would close its epochs over the wrong times, or never)";
  }
}
