package io.anneal.billing.bme;

/** The stored circuit-breaker record (bme-spec 7.1). */
public record BreakerState(Status status, Status previousStatus, long epochHeightDiff) {
  public static BreakerState genesis(BmeParams p) {
    return new BreakerState(Status.HALT_CR, Status.UNSPECIFIED, p.minEpochBlocks());
  }
}
