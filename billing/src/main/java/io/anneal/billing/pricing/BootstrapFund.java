package io.anneal.billing.pricing;

import io.anneal.billing.bme.Dec;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * bme-spec 16.3: a fund in ACT that tops small providers up to a floor revenue per GPU-hour and
 * sunsets with network utilization. Eligible: at most {@code maxGpus} GPUs and online at least
 * {@code minOnline} of the window. The share paid is 1 below utilization {@code u0}, 0 above
 * {@code u1}, linear in between, and 0 for good from tick {@code endTick}. A window's payouts never
 * exceed the fund: when they would, each payout is scaled by fund / owed, rounded down, so
 * the sum stays within the balance.
 */
public record BootstrapFund(int maxGpus, Dec minOnline, Dec u0, Dec u1, long endTick) {
  public BootstrapFund {
    Objects.requireNonNull(minOnline, "minOnline");
    Objects.requireNonNull(u0, "u0");
    Objects.requireNonNull(u1, "u1");
    if (maxGpus < 1) throw new IllegalArgumentException("maxGpus must be >= 1");
    if (u0.signum() < 0 || u1.compareTo(u0) <= 0 || u1.compareTo(Dec.ONE) > 0) {
      throw new IllegalArgumentException("sunset bounds must satisfy 0 <= u0 < u1 <= 1, got " + u0 + ", " + u1);
    }
  }

  /** The spec's defaults: 8 GPUs, 90 % online, sunset from 0.3 to 0.7, no end date. */
  public static BootstrapFund defaults() {
    return new BootstrapFund(8, Dec.parse("0.9"), Dec.parse("0.3"), Dec.parse("0.7"), Long.MAX_VALUE);
  }

  /**
   * One provider's window: its GPUs, the share of the window it was online, what it earned (uact),
   * and the floor revenue of its GPU class (uact per online GPU-hour).
   */
  public record ProviderWindow(String provider, int gpus, Dec online, long revenueUact, long floorUactPerGpuHour) {
    public ProviderWindow {
      Objects.requireNonNull(provider, "provider");
      Objects.requireNonNull(online, "online");
      if (gpus < 0 || revenueUact < 0 || floorUactPerGpuHour < 0) {
        throw new IllegalArgumentException("gpus, revenue and floor must be >= 0");
      }
    }
  }

  public record Payout(String provider, long uact) {}

  /** Share of the floor paid at network utilization {@code u} on tick {@code tick}. */
  public Dec share(Dec u, long tick) {
    if (tick >= endTick || u.compareTo(u1) >= 0) return Dec.ZERO;
    if (u.compareTo(u0) <= 0) return Dec.ONE;
    return u1.sub(u).quo(u1.sub(u0));
  }

  /**
   * The payouts of one window of {@code windowSeconds}, given the fund's balance and the network
   * utilization of the window. Providers with nothing owed get no entry.
   */
  public List<Payout> payouts(List<ProviderWindow> providers, long windowSeconds, Dec utilization, long tick,
      long fundUact) {
    Dec share = share(utilization, tick);
    List<Payout> owed = new ArrayList<>();
    if (share.isZero() || fundUact <= 0) return owed;
    long total = 0;
    for (ProviderWindow p : providers) {
      if (p.gpus() == 0 || p.gpus() > maxGpus || p.online().compareTo(minOnline) < 0) continue;
      Dec floor = Dec.fromInt(p.floorUactPerGpuHour()).mul(Dec.fromInt((long) p.gpus() * windowSeconds))
          .quo(Dec.fromInt(3600)).mul(p.online());
      Dec gap = floor.sub(Dec.fromInt(p.revenueUact()));
      if (gap.signum() <= 0) continue;
      long amount = gap.mul(share).trunc().longValueExact();
      if (amount <= 0) continue;
      owed.add(new Payout(p.provider(), amount));
      total = Math.addExact(total, amount);
    }
    if (total <= fundUact) return owed;
    List<Payout> capped = new ArrayList<>();
    BigInteger fund = BigInteger.valueOf(fundUact);
    BigInteger sum = BigInteger.valueOf(total);
    for (Payout p : owed) {
      long amount = BigInteger.valueOf(p.uact()).multiply(fund).divide(sum).longValueExact();
      if (amount > 0) capped.add(new Payout(p.provider(), amount));
    }
    return capped;
  }
}
