package io.anneal.billing.oracle;

import io.anneal.billing.bme.OracleAggregator;
import io.anneal.billing.bme.OracleSnapshot;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The price history of every feed and the aggregate the BME sees (bme-spec section 5). Thread-safe:
 * feeds are polled on a worker thread, the snapshot is read by the API and the breaker tick.
 */
public final class OracleState {
  private static final int KEEP = 1024; // per source; far more than a TWAP window needs

  private final OracleAggregator.Params params;
  private final Map<String, ArrayDeque<OracleAggregator.PriceRecord>> history = new LinkedHashMap<>();
  private final Map<String, String> lastError = new LinkedHashMap<>();
  private OracleAggregator.Result last;

  public OracleState(OracleAggregator.Params params) {
    this.params = params;
  }

  public synchronized void record(String source, OracleAggregator.PriceRecord r) {
    ArrayDeque<OracleAggregator.PriceRecord> h = history.computeIfAbsent(source, k -> new ArrayDeque<>());
    OracleAggregator.PriceRecord prev = h.peekLast();
    if (prev != null && r.tsNs() < prev.tsNs()) return; // a source may not go back in time (bme-spec 5)
    h.addLast(r);
    while (h.size() > KEEP) h.pollFirst();
    lastError.remove(source);
  }

  public synchronized void failed(String source, String error) {
    history.computeIfAbsent(source, k -> new ArrayDeque<>());
    lastError.put(source, error);
  }

  /** The aggregate at {@code nowNs}. */
  public synchronized OracleAggregator.Result aggregate(long nowNs) {
    List<OracleAggregator.Source> sources = new ArrayList<>();
    history.forEach((name, h) -> sources.add(new OracleAggregator.Source(name, new ArrayList<>(h))));
    last = OracleAggregator.aggregate(nowNs, sources, params);
    return last;
  }

  /** What the BME uses now: healthy with the aggregate TWAP, or unhealthy. */
  public OracleSnapshot snapshot(long nowNs) {
    return aggregate(nowNs).snapshot();
  }

  public synchronized Map<String, String> errors() {
    return Map.copyOf(lastError);
  }
}
