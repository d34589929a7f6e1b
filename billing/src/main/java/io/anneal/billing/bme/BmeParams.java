package io.anneal.billing.bme;

import java.math.BigInteger;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Engine parameters of bme-spec 3.1 with the chain defaults, and the engine options of 16.4 (all off
 * by default).
 */
public record BmeParams(
    long circuitBreakerWarnThreshold,
    long circuitBreakerHaltThreshold,
    long minEpochBlocks,
    long epochBlocksBackoffPercent,
    long mintSpreadBps,
    long settleSpreadBps,
    long maxEndblockerRecords,
    Map<String, BigInteger> minMint,
    long maxPendingAttempts,
    Options options) {

  /**
   * bme-spec 16.4, beyond the chain and off by default.
   *
   * @param fifoQueue            process each queue in request order (tick, seq) instead of by owner key
   * @param rejectBelowMinMint   refuse at admission an AKT→ACT request whose gross output at the
   *                             current price is below {@code minMint} (or below one base unit)
   *                             instead of queueing it to be cancelled at the next mint epoch
   * @param exactUsd             accept top-ups stated in USD: {@code uakt = ceil(usd / P)}
   * @param restartThresholdBps  0 = off; else a breaker in HALT_CR leaves it only once CR is above
   *                             this (hysteresis; the AEP design note suggests 9300)
   * @param maxQueueDepth        0 = off; else an AKT→ACT request (demand) is refused ({@code QUEUE_FULL},
   *                             HTTP 429) while the mint queue already holds this many; redemptions
   *                             are not limited (a provider's payout waits for its earlier one)
   */
  public record Options(boolean fifoQueue, boolean rejectBelowMinMint, boolean exactUsd, long restartThresholdBps,
      long maxQueueDepth) {
    public static final Options OFF = new Options(false, false, false, 0, 0);
  }

  public static final long BACKOFF_STEP_BPS = 10;
  public static final long BACKOFF_CAP_TICKS = 14_400;
  public static final long CR_BPS_CLAMP = 4_294_967_295L;

  public BmeParams {
    minMint = Map.copyOf(new TreeMap<>(minMint));
    options = options == null ? Options.OFF : options;
  }

  /** The chain's parameters with every 16.4 option off. */
  public BmeParams(long circuitBreakerWarnThreshold, long circuitBreakerHaltThreshold, long minEpochBlocks,
      long epochBlocksBackoffPercent, long mintSpreadBps, long settleSpreadBps, long maxEndblockerRecords,
      Map<String, BigInteger> minMint, long maxPendingAttempts) {
    this(circuitBreakerWarnThreshold, circuitBreakerHaltThreshold, minEpochBlocks, epochBlocksBackoffPercent,
        mintSpreadBps, settleSpreadBps, maxEndblockerRecords, minMint, maxPendingAttempts, Options.OFF);
  }

  /** The same parameters with other 16.4 options. */
  public BmeParams withOptions(Options o) {
    return new BmeParams(circuitBreakerWarnThreshold, circuitBreakerHaltThreshold, minEpochBlocks,
        epochBlocksBackoffPercent, mintSpreadBps, settleSpreadBps, maxEndblockerRecords, minMint, maxPendingAttempts, o);
  }

  public static BmeParams defaults() {
    return new BmeParams(9500, 9000, 10, 10, 25, 0, 50, Map.of("uact", BigInteger.valueOf(10_000_000)), 3);
  }

  /** The first failing validation code, in the spec's order, or empty when valid. */
  public Optional<String> validate() {
    if (minEpochBlocks <= 0) return Optional.of("MIN_EPOCH_BLOCKS_NOT_POSITIVE");
    if (circuitBreakerWarnThreshold > 10000) return Optional.of("WARN_THRESHOLD_ABOVE_10000");
    if (circuitBreakerHaltThreshold > 10000) return Optional.of("HALT_THRESHOLD_ABOVE_10000");
    if (circuitBreakerWarnThreshold <= circuitBreakerHaltThreshold) return Optional.of("WARN_NOT_ABOVE_HALT");
    if (mintSpreadBps > 1000) return Optional.of("MINT_SPREAD_ABOVE_1000");
    if (settleSpreadBps > 1000) return Optional.of("SETTLE_SPREAD_ABOVE_1000");
    if (epochBlocksBackoffPercent > 100) return Optional.of("BACKOFF_ABOVE_100");
    for (BigInteger v : minMint.values()) {
      if (v.signum() <= 0) return Optional.of("MIN_MINT_INVALID");
    }
    if (maxEndblockerRecords < 1) return Optional.of("MAX_RECORDS_NOT_POSITIVE");
    if (maxPendingAttempts < 1) return Optional.of("MAX_ATTEMPTS_NOT_POSITIVE");
    long restart = options.restartThresholdBps();
    if (restart != 0 && (restart <= circuitBreakerHaltThreshold || restart > 10000)) {
      return Optional.of("RESTART_THRESHOLD_INVALID");
    }
    if (options.maxQueueDepth() < 0) return Optional.of("MAX_QUEUE_DEPTH_NEGATIVE");
    return Optional.empty();
  }
}
