package io.anneal.billing.ledger;

import io.anneal.billing.bme.BmeError;
import io.anneal.billing.bme.BmeParams;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.List;
import java.util.Optional;

/** What the mint and payout queues share: bme-spec 10.4, a failed execution is retried or cancelled. */
final class BmeRequests {
  private BmeRequests() {}

  /**
   * A fatal failure cancels at once, a retriable one counts an attempt and cancels at
   * {@code maxPendingAttempts}; a cancellation returns the input from {@code heldBy} to the owner
   * (a balanced entry) and records why. Returns the reason when cancelled, empty when left to retry.
   */
  static Optional<String> retryOrCancel(Connection c, long id, String owner, long amount, String denom, String heldBy,
      String cancelKind, int attempts, BmeError code, BmeParams params, long nowMs) throws SQLException {
    int tries = attempts + 1;
    if (!code.fatal() && tries < params.maxPendingAttempts()) {
      try (PreparedStatement ps = c.prepareStatement("UPDATE bme_request SET attempts = ?, reason = ? WHERE id = ?")) {
        ps.setInt(1, tries);
        ps.setString(2, code.name());
        ps.setLong(3, id);
        ps.executeUpdate();
      }
      return Optional.empty();
    }
    String reason = code.fatal() ? code.name() : BmeError.MAX_ATTEMPTS.name();
    long tx = SqlLedger.post(c, cancelKind, cancelKind + ":" + id,
        List.of(new Posting(heldBy, denom, -amount), new Posting(owner, denom, amount))).orElseThrow();
    try (PreparedStatement ps = c.prepareStatement("UPDATE bme_request SET state = 'CANCELED', attempts = ?, reason = ?,"
        + " decided_at_ms = ?, tx_id = ? WHERE id = ?")) {
      ps.setInt(1, tries);
      ps.setString(2, reason);
      ps.setLong(3, nowMs);
      ps.setLong(4, tx);
      ps.setLong(5, id);
      ps.executeUpdate();
    }
    return Optional.of(reason);
  }
}
