package io.anneal.billing.bme;

import java.math.BigInteger;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/** Engine parameters of bme-spec 3.1 with the chain defaults. */
public record BmeParams(
    long circuitBreakerWarnThreshold,
    long circuitBreakerHaltThreshold,
    long minEpochBlocks,
    long epochBlocksBackoffPercent,
    long mintSpreadBps,
    long settleSpreadBps,
    long maxEndblockerRecords,
    Map<String, BigInteger> minMint,
    long maxPendingAttempts) {

  public static final long BACKOFF_STEP_BPS = 10;
  public static final long BACKOFF_CAP_TICKS = 14_400;
  public static final long CR_BPS_CLAMP = 4_294_967_295L;

  public BmeParams {
    minMint = Map.copyOf(new TreeMap<>(minMint));
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
    return Optional.empty();
  }
}
