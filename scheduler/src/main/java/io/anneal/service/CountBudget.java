package io.anneal.service;

/**
 * When to count again something whose count costs more as the store grows: the finished jobs behind
 * the {@code anneal_jobs} gauges of finished states, a pass over their part of the state index (on
 * 2,000,000 jobs ~0.7 s on H2, ~0.5 s on PostgreSQL). A count is due once {@code minIntervalMs} has
 * passed since the last one began, and no sooner than {@code share} times what the last one took
 * after it ended: the count keeps to a bounded share of a connection's time however large the table.
 * Not thread-safe: one caller at a time, the gauges' refresh (whose reads end before the next begins).
 */
final class CountBudget {
  private final long minIntervalMs;
  private final long share;
  private long dueAtMs = Long.MIN_VALUE;

  /** @param share how many times its own duration the time between two counts is at least */
  CountBudget(long minIntervalMs, long share) {
    if (minIntervalMs <= 0 || share < 1) throw new IllegalArgumentException("minIntervalMs must be > 0 and share >= 1");
    this.minIntervalMs = minIntervalMs;
    this.share = share;
  }

  /** Whether a count is due at {@code nowMs}; the first one is. */
  boolean due(long nowMs) {
    return nowMs >= dueAtMs;
  }

  /** A count ran from {@code startedMs} to {@code endedMs}: the next is due no sooner than the budget allows. */
  void counted(long startedMs, long endedMs) {
    long took = Math.max(0, endedMs - startedMs);
    dueAtMs = Math.max(startedMs + minIntervalMs, endedMs + Math.multiplyExact(took, share));
  }

  /** A count failed: the next is tried after the shortest interval. */
  void failed(long startedMs) {
    dueAtMs = startedMs + minIntervalMs;
  }
}
