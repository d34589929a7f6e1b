package io.anneal.billing.oracle;

import io.anneal.billing.bme.OracleAggregator;
import java.util.Optional;

/** One source of AKT/USD prices. {@link #poll} may block (file, network): call it off the event loop. */
public interface PriceFeed {
  /** Stable source id, shown in the API. */
  String name();

  /** The source's newest price now, or empty when it has none (it will then go stale). */
  Optional<OracleAggregator.PriceRecord> poll(long nowNs) throws Exception;
}
