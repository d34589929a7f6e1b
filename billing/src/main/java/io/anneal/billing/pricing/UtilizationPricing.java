package io.anneal.billing.pricing;

import io.anneal.billing.bme.Dec;
import java.util.Objects;

/**
 * bme-spec 16.2: the price of one GPU class moved once per pricing window by how far its
 * utilization was from the target, EIP-1559 style. {@code adj = quo(mul(δ, u − τ), τ)},
 * {@code p' = mul(p, 1 + adj)}, clamped to {@code [min, max]}; with the defaults (τ = 0.5,
 * δ = 0.125) one window moves a price by at most ±12.5 %.
 *
 * <p>Prices are uact per GPU-second ({@link Dec}); utilization is busy over available GPU-seconds.
 */
public record UtilizationPricing(Dec target, Dec maxChange, Dec min, Dec max) {
  public UtilizationPricing {
    Objects.requireNonNull(target, "target");
    Objects.requireNonNull(maxChange, "maxChange");
    Objects.requireNonNull(min, "min");
    Objects.requireNonNull(max, "max");
    if (target.signum() <= 0 || target.compareTo(Dec.ONE) >= 0) {
      throw new IllegalArgumentException("target utilization must be in (0, 1), got " + target);
    }
    if (maxChange.signum() < 0 || maxChange.compareTo(Dec.ONE) >= 0) {
      throw new IllegalArgumentException("max change must be in [0, 1), got " + maxChange);
    }
    if (min.signum() <= 0 || max.compareTo(min) < 0) {
      throw new IllegalArgumentException("price bounds must satisfy 0 < min <= max, got [" + min + ", " + max + "]");
    }
  }

  /** The spec's defaults around a base price: τ 0.5, δ 0.125, bounds [base / 4, base × 4]. */
  public static UtilizationPricing around(Dec basePerGpuSecond) {
    return new UtilizationPricing(Dec.parse("0.5"), Dec.parse("0.125"), basePerGpuSecond.quo(Dec.fromInt(4)),
        basePerGpuSecond.mul(Dec.fromInt(4)));
  }

  /** Utilization of one window; no available GPU-seconds counts as the target (the price holds). */
  public Dec utilization(long busyGpuSeconds, long availableGpuSeconds) {
    if (busyGpuSeconds < 0 || availableGpuSeconds < 0) throw new IllegalArgumentException("GPU-seconds must be >= 0");
    if (availableGpuSeconds == 0) return target;
    Dec u = Dec.fromInt(busyGpuSeconds).quo(Dec.fromInt(availableGpuSeconds));
    return u.compareTo(Dec.ONE) > 0 ? Dec.ONE : u;
  }

  /** The next window's price from this window's utilization. */
  public Dec next(Dec price, Dec utilization) {
    Dec adj = maxChange.mul(utilization.sub(target)).quo(target);
    Dec p = price.mul(Dec.ONE.add(adj));
    if (p.compareTo(min) < 0) return min;
    if (p.compareTo(max) > 0) return max;
    return p;
  }

  /** uact per GPU-hour (truncated) to uact per GPU-second and back, for configuration in whole units. */
  public static Dec perGpuSecond(long uactPerGpuHour) {
    return Dec.fromInt(uactPerGpuHour).quo(Dec.fromInt(3600));
  }

  public static long perGpuHour(Dec perGpuSecond) {
    return perGpuSecond.mul(Dec.fromInt(3600)).trunc().longValueExact();
  }
}
