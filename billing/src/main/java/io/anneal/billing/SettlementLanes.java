package io.anneal.billing;

import io.anneal.billing.sql.Database;
import io.anneal.billing.sql.GroupCommitWriter;

/**
 * Where receipts are settled: the store's one writer, or (PostgreSQL) several writers of their own
 * whose transactions run at once, each on its own connection (ADR 0011). A receipt goes to the lane
 * of its job, so a job's receipts (a preempted run's, the final one, every redelivery) are settled one
 * after another and two lanes never spend the same escrow; what several lanes share (balances, the
 * batch signatures) is written so that concurrent transactions wait for each other instead of
 * failing, and readers that need every earlier settlement committed take
 * {@code SqlLedger.settlementBarrier}.
 */
public final class SettlementLanes implements AutoCloseable {
  private final GroupCommitWriter[] lanes;
  private final boolean owned;

  private SettlementLanes(GroupCommitWriter[] lanes, boolean owned) {
    this.lanes = lanes;
    this.owned = owned;
  }

  /** Settles on the store's writer, in its transactions. */
  public static SettlementLanes shared(GroupCommitWriter writer) {
    return new SettlementLanes(new GroupCommitWriter[] {writer}, false);
  }

  /**
   * {@code count} writers of their own ({@code count} ≥ 1), each committing up to {@code maxBatch}
   * receipts per transaction. PostgreSQL only: on H2 every write must go through the one writer,
   * since the settlement barrier is a PostgreSQL advisory lock.
   */
  public static SettlementLanes own(Database db, int count, int maxBatch) {
    if (count < 1) throw new IllegalArgumentException("settlement lanes must be >= 1, not " + count);
    if (!db.postgres()) {
      throw new IllegalArgumentException("settlement lanes of their own need PostgreSQL; on H2 receipts settle on the"
          + " store's writer (lanes 0)");
    }
    GroupCommitWriter[] w = new GroupCommitWriter[count];
    for (int i = 0; i < count; i++) w[i] = new GroupCommitWriter(db, "anneal-settlement-" + i, maxBatch);
    return new SettlementLanes(w, true);
  }

  /** The writer that settles the receipts of this job. */
  public GroupCommitWriter laneOf(String jobId) {
    return lanes.length == 1 ? lanes[0] : lanes[Math.floorMod(jobId.hashCode(), lanes.length)];
  }

  /** Lanes of its own (0 when settling on the store's writer). */
  public int ownLanes() {
    return owned ? lanes.length : 0;
  }

  /** The writers of lanes of its own (none when settling on the store's writer). */
  public java.util.List<GroupCommitWriter> ownWriters() {
    return owned ? java.util.List.of(lanes) : java.util.List.of();
  }

  /** Transactions committed by the lanes' writers so far (the store's writer's when settling on it). */
  public long commits() {
    long n = 0;
    for (GroupCommitWriter w : lanes) n += w.commits();
    return n;
  }

  /** Closes lanes of its own after they commit what is queued; the store's writer is its owner's to close. */
  @Override
  public void close() {
    if (!owned) return;
    for (GroupCommitWriter w : lanes) w.close();
  }
}
