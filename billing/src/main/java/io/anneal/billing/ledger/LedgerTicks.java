package io.anneal.billing.ledger;

import io.anneal.billing.bme.BmeParams;
import io.anneal.billing.bme.OracleSnapshot;
import io.anneal.billing.bme.Status;
import io.anneal.billing.bme.StatusUpdate;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;

/**
 * The end of a BME tick on the SQL ledger, bme-spec 9.1 step by step, as {@code BmeEngine.endTick}
 * does it in memory: a redemption batch when {@code burnEpoch <= h}; the status update; then either
 * re-arming the mint epoch after a halt or, when {@code mintEpoch == h} and the status allows, a mint
 * batch followed by another status update. One budget of {@code maxEndblockerRecords} per tick is
 * shared, the mint batch always running at least one record. The epoch heights live here (like the
 * engine's), so one instance drives one ledger; after a restart they start again from genesis values.
 */
public final class LedgerTicks {
  private long mintEpoch;
  private long burnEpoch;

  public LedgerTicks(BmeParams params) {
    this.mintEpoch = params.minEpochBlocks();
    this.burnEpoch = params.minEpochBlocks();
  }

  /** What one tick did: the last status update, the payouts and the mints it executed (or cancelled). */
  public record Result(StatusUpdate update, List<Redemptions.Outcome> payouts, List<Mints.Outcome> mints) {}

  /**
   * Ends tick {@code h} (ticks are consecutive) at oracle snapshot {@code oracle}; with
   * {@code payoutMinUact} > 0, providers holding at least that much ACT are queued for payout first.
   */
  public Result endTick(Connection c, long h, OracleSnapshot oracle, BmeParams params, long payoutMinUact, long nowMs)
      throws SQLException {
    List<Redemptions.Outcome> payouts = List.of();
    if (burnEpoch <= h) {
      burnEpoch = h + params.minEpochBlocks();
      if (payoutMinUact > 0) Redemptions.requestAll(c, payoutMinUact, oracle, nowMs);
      payouts = Redemptions.runEpoch(c, oracle, params, nowMs);
    }
    StatusUpdate u = SqlLedger.updateBreaker(c, oracle, params);
    Status st = u.state().status();
    List<Mints.Outcome> mints = List.of();
    if (u.changed() && u.state().previousStatus().compareTo(Status.HALT_CR) >= 0 && st.compareTo(Status.WARNING) <= 0) {
      mintEpoch = h + u.state().epochHeightDiff(); // the breaker has just reset: no mint batch this tick
    } else if (st.compareTo(Status.WARNING) <= 0 && mintEpoch == h) {
      mintEpoch = h + u.state().epochHeightDiff();
      mints = Mints.runEpoch(c, oracle, params, nowMs, (int) Math.max(1, params.maxEndblockerRecords() - payouts.size()));
      StatusUpdate after = SqlLedger.updateBreaker(c, oracle, params);
      u = new StatusUpdate(after.state(), u.changed() || after.changed(), after.cr());
    }
    return new Result(u, payouts, mints);
  }
}
