package io.anneal.billing.oracle;

import io.anneal.billing.bme.Dec;
import io.anneal.billing.bme.OracleAggregator;
import java.util.Optional;

/** A constant price, stamped at every poll (the default: no market data needed). */
public final class FixedPriceFeed implements PriceFeed {
  private final Dec price;
  private long seq;

  public FixedPriceFeed(Dec price) {
    this.price = price;
  }

  @Override
  public String name() {
    return "fixed";
  }

  @Override
  public Optional<OracleAggregator.PriceRecord> poll(long nowNs) {
    return Optional.of(new OracleAggregator.PriceRecord(nowNs, seq++, price));
  }
}
