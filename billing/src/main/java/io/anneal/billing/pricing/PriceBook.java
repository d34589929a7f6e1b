package io.anneal.billing.pricing;

import io.anneal.billing.bme.Dec;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * The price of each GPU class over time (bme-spec 16.2): starts at the configured base price and,
 * when adjustment is on, moves once per pricing window with {@link UtilizationPricing}. Jobs are
 * charged the price in force when they start, so every price keeps its history ({@link #priceAt}).
 * Thread-safe; no I/O (the caller persists {@link Change}s and restores them at start).
 */
public final class PriceBook {
  /** A class's price from {@code fromMs} on, in uact per GPU-second (exact) and per GPU-hour (truncated). */
  public record Change(String gpuClass, long fromMs, Dec perGpuSecond, long perGpuHour, Dec utilization) {
    public Change {
      Objects.requireNonNull(gpuClass, "gpuClass");
      Objects.requireNonNull(perGpuSecond, "perGpuSecond");
    }
  }

  private final Map<String, Long> base;
  private final Map<String, UtilizationPricing> rules = new LinkedHashMap<>();
  private final Map<String, TreeMap<Long, Change>> history = new LinkedHashMap<>();

  /**
   * @param baseUactPerGpuHour configured base price per class
   * @param target target utilization τ (spec default 0.5)
   * @param maxChange largest step per window δ (spec default 0.125)
   */
  public PriceBook(Map<String, Long> baseUactPerGpuHour, Dec target, Dec maxChange) {
    this.base = Map.copyOf(baseUactPerGpuHour);
    base.forEach((cls, p) -> {
      if (p <= 0) throw new IllegalArgumentException("price of " + cls + " must be > 0");
      Dec perSecond = UtilizationPricing.perGpuSecond(p);
      rules.put(cls, new UtilizationPricing(target, maxChange, perSecond.quo(Dec.fromInt(4)), perSecond.mul(Dec.fromInt(4))));
    });
  }

  /** The spec's defaults: τ 0.5, δ 0.125; bounds a quarter to four times the base price. */
  public static PriceBook withDefaults(Map<String, Long> baseUactPerGpuHour) {
    return new PriceBook(baseUactPerGpuHour, Dec.parse("0.5"), Dec.parse("0.125"));
  }

  private Change latest(String cls) {
    TreeMap<Long, Change> h = history.get(cls);
    return h == null || h.isEmpty() ? null : h.lastEntry().getValue();
  }

  /** Current prices, uact per GPU-hour. */
  public synchronized Map<String, Long> current() {
    Map<String, Long> out = new LinkedHashMap<>();
    for (String cls : base.keySet()) {
      Change c = latest(cls);
      out.put(cls, c == null ? base.get(cls) : c.perGpuHour());
    }
    return out;
  }

  /** The price (uact per GPU-hour) of {@code cls} in force at {@code atMs}; null for an unknown class. */
  public synchronized Long priceAt(String cls, long atMs) {
    if (!base.containsKey(cls)) return null;
    TreeMap<Long, Change> h = history.get(cls);
    var e = h == null ? null : h.floorEntry(atMs);
    return e == null ? base.get(cls) : e.getValue().perGpuHour();
  }

  /**
   * Closes a pricing window at {@code nowMs}: each class with capacity in the window moves by its
   * utilization (busy over available GPU-seconds). Returns the changes (to persist); a class whose
   * price did not move, or that had no capacity, is left out.
   */
  public synchronized List<Change> closeWindow(Map<String, long[]> busyAndAvailableGpuSeconds, long nowMs) {
    List<Change> out = nextWindow(busyAndAvailableGpuSeconds, nowMs);
    restore(out);
    return out;
  }

  /**
   * What closing a pricing window at {@code nowMs} would change, as {@link #closeWindow}, without changing
   * anything (nothing for a class whose latest change is from {@code nowMs} or later): the service persists the changes first and applies them ({@link #restore}) once stored, so that
   * no instance charges or quotes a price the store does not hold.
   */
  public synchronized List<Change> nextWindow(Map<String, long[]> busyAndAvailableGpuSeconds, long nowMs) {
    List<Change> out = new java.util.ArrayList<>();
    busyAndAvailableGpuSeconds.forEach((cls, ba) -> {
      UtilizationPricing rule = rules.get(cls);
      if (rule == null || ba[1] <= 0) return;
      Change last = latest(cls);
      // a change from this window's end or later is in already: this window sent again, or a later window
      // (another scheduler's, around a takeover) closed first; either way it moves nothing more (ADR 21)
      if (last != null && last.fromMs() >= nowMs) return;
      Dec now = last == null ? UtilizationPricing.perGpuSecond(base.get(cls)) : last.perGpuSecond();
      Dec u = rule.utilization(ba[0], ba[1]);
      Dec next = rule.next(now, u);
      if (next.equals(now)) return;
      out.add(new Change(cls, nowMs, next, UtilizationPricing.perGpuHour(next), u));
    });
    return out;
  }

  /**
   * Restores persisted changes: at start, and whenever another instance's billing stored some (cluster
   * mode). Idempotent: a change already held is held once.
   */
  public synchronized void restore(List<Change> changes) {
    for (Change c : changes) {
      if (base.containsKey(c.gpuClass())) history.computeIfAbsent(c.gpuClass(), k -> new TreeMap<>()).put(c.fromMs(), c);
    }
  }

  /** The latest change of each class (for the API), or none while a class is at its base price. */
  public synchronized Map<String, Change> latestChanges() {
    Map<String, Change> out = new LinkedHashMap<>();
    for (String cls : base.keySet()) {
      Change c = latest(cls);
      if (c != null) out.put(cls, c);
    }
    return out;
  }

  /** When each class's latest change took effect (ms), for the classes moved from their base price. */
  public synchronized Map<String, Long> latestFromMs() {
    Map<String, Long> out = new LinkedHashMap<>();
    latestChanges().forEach((cls, c) -> out.put(cls, c.fromMs()));
    return out;
  }

  public Map<String, Long> base() {
    return base;
  }
}
