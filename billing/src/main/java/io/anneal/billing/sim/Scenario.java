package io.anneal.billing.sim;

import java.util.Arrays;
import java.util.Optional;

/**
 * What happens to the market over simulated hours. Every scenario is steady until {@link #EVENT_HOUR}:
 * the first day is warm-up (tenants build their ACT buffers), the second the baseline the event is
 * compared with.
 */
public enum Scenario {
  /** Nothing happens: the baseline. */
  STEADY("steady"),
  /** Demand ×10 overnight (ramped over one hour from the event), for one day, then back. */
  SPIKE_10X("spike10x"),
  /** No fresh oracle price for six hours from the event. */
  ORACLE_OUTAGE("oracle-outage"),
  /** The AKT price falls by 70 % over two hours from the event and stays there. */
  PRICE_CRASH("price-crash"),
  /** Every second large provider (half the large GPUs of each class) leaves at the event. */
  PROVIDER_EXODUS("provider-exodus");

  public static final int EVENT_HOUR = 48;

  private final String id;

  Scenario(String id) {
    this.id = id;
  }

  public String id() {
    return id;
  }

  public static Optional<Scenario> byId(String id) {
    return Arrays.stream(values()).filter(s -> s.id.equals(id)).findFirst();
  }

  public static String ids() {
    return String.join(", ", Arrays.stream(values()).map(Scenario::id).toList());
  }

  /** Demand relative to the baseline at (fractional) hour {@code h}. */
  double demandMultiplier(double h) {
    if (this != SPIKE_10X || h < EVENT_HOUR || h >= EVENT_HOUR + 24) return 1.0;
    return Math.min(10.0, 1.0 + 9.0 * (h - EVENT_HOUR));
  }

  /** AKT price relative to the random walk at hour {@code h}. */
  double priceFactor(double h) {
    if (this != PRICE_CRASH || h < EVENT_HOUR) return 1.0;
    return Math.max(0.3, 1.0 - 0.35 * (h - EVENT_HOUR));
  }

  boolean oracleHealthy(double h) {
    return this != ORACLE_OUTAGE || h < EVENT_HOUR || h >= EVENT_HOUR + 6;
  }

  /** Whether large provider {@code index} is still in the fleet at hour {@code h}. */
  boolean largeProviderPresent(int index, double h) {
    return this != PROVIDER_EXODUS || h < EVENT_HOUR || index % 2 == 1;
  }
}
