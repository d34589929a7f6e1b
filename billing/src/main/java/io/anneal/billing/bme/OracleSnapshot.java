package io.anneal.billing.bme;

import java.util.Objects;

/** The AKT/USD price as the BME sees it during one tick. ACT is pegged to exactly 1 USD. */
public record OracleSnapshot(boolean healthy, Dec priceAkt) {
  public OracleSnapshot {
    Objects.requireNonNull(priceAkt, "priceAkt");
    if (priceAkt.signum() < 0) throw new IllegalArgumentException("price must be >= 0");
  }

  public static OracleSnapshot healthy(String price) {
    return new OracleSnapshot(true, Dec.parse(price));
  }

  /** {@code price(denom)}: uact is 1, uakt the aggregate if healthy, else ORACLE_UNHEALTHY. */
  public Dec price(String denom) throws BmeException {
    if ("uact".equals(denom)) return Dec.ONE;
    if (!"uakt".equals(denom)) throw new BmeException(BmeError.INVALID_DENOM, "no price for " + denom);
    if (!healthy) throw new BmeException(BmeError.ORACLE_UNHEALTHY, "oracle unhealthy");
    return priceAkt;
  }
}
