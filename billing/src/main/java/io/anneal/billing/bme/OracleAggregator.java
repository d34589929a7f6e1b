package io.anneal.billing.bme;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** Price aggregation of bme-spec section 5 (x/oracle v2): staleness, per-source TWAP, median, deviation. */
public final class OracleAggregator {
  /** Oracle parameters (section 3.2); durations in nanoseconds. */
  public record Params(long minPriceSources, long maxPriceStalenessNs, long twapWindowNs, long maxPriceDeviationBps) {
    public static Params defaults() {
      return new Params(1, 30_000_000_000L, 5_000_000_000L, 150);
    }
  }

  /** One price submission of a source. */
  public record PriceRecord(long tsNs, long seq, Dec price) {}

  /** All submissions of one source. */
  public record Source(String source, List<PriceRecord> records) {
    public Source {
      records = List.copyOf(records);
    }
  }

  /** The aggregate; {@code failure} is null when healthy. Prices are null when they cannot be computed. */
  public record Result(boolean healthy, int numSources, Dec twap, Dec median, Dec minPrice, Dec maxPrice,
      Long deviationBps, String failure) {

    public OracleSnapshot snapshot() {
      return new OracleSnapshot(healthy, twap == null ? Dec.ZERO : twap);
    }
  }

  private static final Comparator<PriceRecord> NEWEST_FIRST =
      Comparator.comparingLong(PriceRecord::tsNs).thenComparingLong(PriceRecord::seq).reversed();

  private OracleAggregator() {}

  public static Result aggregate(long nowNs, List<Source> sources, Params p) {
    long cutoff = nowNs - p.maxPriceStalenessNs();
    List<PriceRecord> latest = new ArrayList<>();
    List<Dec> twaps = new ArrayList<>();
    for (Source s : sources) {
      if (s.records().isEmpty()) continue;
      List<PriceRecord> sorted = new ArrayList<>(s.records());
      sorted.sort(NEWEST_FIRST);
      PriceRecord newest = sorted.get(0);
      if (newest.tsNs() < cutoff) continue; // stale: ignored entirely
      latest.add(newest);
      Dec twap = twap(nowNs, sorted, p.twapWindowNs());
      if (twap != null) twaps.add(twap);
    }
    if (latest.isEmpty()) return new Result(false, 0, null, null, null, null, null, "ALL_SOURCES_STALE");
    if (twaps.isEmpty()) return new Result(false, 0, null, null, null, null, null, "NO_TWAP");
    Dec sum = Dec.ZERO;
    for (Dec t : twaps) sum = sum.add(t);
    Dec twap = sum.quo(Dec.fromInt(twaps.size()));
    List<Dec> prices = new ArrayList<>();
    for (PriceRecord r : latest) prices.add(r.price());
    prices.sort(Comparator.naturalOrder());
    int n = prices.size();
    Dec median = n % 2 == 1 ? prices.get(n / 2) : prices.get(n / 2 - 1).add(prices.get(n / 2)).quo(Dec.fromInt(2));
    Dec min = prices.get(0);
    Dec max = prices.get(n - 1);
    long dev = min.isZero() ? 0 : max.sub(min).mul(Dec.fromInt(10_000)).quo(min).trunc().longValueExact();
    String failure = null;
    if (n < p.minPriceSources()) {
      failure = "TOO_FEW_SOURCES";
    } else if (dev > p.maxPriceDeviationBps()) {
      failure = "DEVIATION_TOO_HIGH";
    }
    return new Result(failure == null, n, twap, median, min, max, dev, failure);
  }

  /** Time-weighted average over [now − window, now] of one source (records newest first), or null. */
  static Dec twap(long nowNs, List<PriceRecord> newestFirst, long windowNs) {
    long start = nowNs - windowNs;
    List<long[]> stamps = new ArrayList<>();
    List<Dec> values = new ArrayList<>();
    for (PriceRecord r : newestFirst) {
      if (r.tsNs() > nowNs) continue;
      if (r.tsNs() >= start) {
        stamps.add(new long[] {r.tsNs()});
        values.add(r.price());
      } else {
        stamps.add(new long[] {start}); // the newest price before the window, re-stamped to its start
        values.add(r.price());
        break;
      }
    }
    if (values.isEmpty()) return null;
    Dec weighted = Dec.ZERO;
    long total = 0;
    for (int i = 0; i < values.size(); i++) {
      long w = i == 0 ? nowNs - stamps.get(0)[0] : stamps.get(i - 1)[0] - stamps.get(i)[0];
      weighted = weighted.add(values.get(i).mul(Dec.fromInt(w)));
      total = Math.addExact(total, w);
    }
    if (total == 0) {
      Dec sum = Dec.ZERO;
      for (Dec v : values) sum = sum.add(v);
      return sum.quo(Dec.fromInt(values.size()));
    }
    return weighted.quo(Dec.fromInt(total));
  }
}
