package io.anneal.billing.oracle;

import io.anneal.billing.bme.Dec;
import io.anneal.billing.bme.OracleAggregator;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * A seeded random walk with occasional shocks, for scenarios and demos: each poll moves the price
 * by a normal step of {@code volatility} (relative) and, with probability {@code shockChance}, by a
 * shock of up to ±{@code shockSize}. Always labelled simulated.
 */
public final class SimulatedPriceFeed implements PriceFeed {
  private final SplittableRandom rnd;
  private final double volatility;
  private final double shockChance;
  private final double shockSize;
  private double price;
  private long seq;

  public SimulatedPriceFeed(long seed, double startPrice, double volatility, double shockChance, double shockSize) {
    this.rnd = new SplittableRandom(seed);
    this.price = startPrice;
    this.volatility = volatility;
    this.shockChance = shockChance;
    this.shockSize = shockSize;
  }

  @Override
  public String name() {
    return "simulated";
  }

  @Override
  public Optional<OracleAggregator.PriceRecord> poll(long nowNs) {
    double z = Math.sqrt(-2 * Math.log(1 - rnd.nextDouble())) * Math.cos(2 * Math.PI * rnd.nextDouble());
    double step = volatility * z;
    if (rnd.nextDouble() < shockChance) step += (rnd.nextDouble() * 2 - 1) * shockSize;
    price = Math.max(1e-6, price * (1 + step));
    Dec p = new Dec(new BigDecimal(price).setScale(Dec.SCALE, RoundingMode.HALF_EVEN));
    return Optional.of(new OracleAggregator.PriceRecord(nowNs, seq++, p));
  }
}
