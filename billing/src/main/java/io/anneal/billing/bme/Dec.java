package io.anneal.billing.bme;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.RoundingMode;

/**
 * The chain's 18-decimal fixed-point number ({@code LegacyDec}), with its exact rounding rules
 * (bme-spec section 2). Values are always at scale 18.
 */
public record Dec(BigDecimal value) implements Comparable<Dec> {
  public static final int SCALE = 18;
  private static final BigDecimal LIMIT =
      new BigDecimal(BigInteger.TWO.pow(256).multiply(BigInteger.TEN.pow(SCALE)).subtract(BigInteger.ONE))
          .movePointLeft(SCALE);
  public static final Dec ZERO = fromInt(0);
  public static final Dec ONE = fromInt(1);

  public Dec {
    if (value.scale() != SCALE) {
      throw new IllegalArgumentException("Dec must have scale 18, got " + value.scale());
    }
    if (value.abs().compareTo(LIMIT) > 0) {
      throw new ArithmeticException("Dec out of range");
    }
  }

  public static Dec fromInt(long n) {
    return new Dec(BigDecimal.valueOf(n).setScale(SCALE));
  }

  public static Dec fromInt(BigInteger n) {
    return new Dec(new BigDecimal(n).setScale(SCALE));
  }

  /** Parses a decimal with at most 18 fractional digits (input prices may have fewer). */
  public static Dec parse(String s) {
    BigDecimal v;
    try {
      v = new BigDecimal(s.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not a decimal: '" + s + "'");
    }
    if (v.scale() > SCALE && v.stripTrailingZeros().scale() > SCALE) {
      throw new IllegalArgumentException("more than 18 decimals: '" + s + "'");
    }
    return new Dec(v.setScale(SCALE, RoundingMode.UNNECESSARY));
  }

  public Dec add(Dec o) {
    return new Dec(value.add(o.value));
  }

  public Dec sub(Dec o) {
    return new Dec(value.subtract(o.value));
  }

  /** Exact product rounded half-to-even to 18 decimals. */
  public Dec mul(Dec o) {
    return new Dec(value.multiply(o.value).setScale(SCALE, RoundingMode.HALF_EVEN));
  }

  /** Quotient truncated at 36 decimals, then rounded half-to-even to 18 (two steps). */
  public Dec quo(Dec o) {
    if (o.value.signum() == 0) throw new ArithmeticException("division by zero");
    return new Dec(value.divide(o.value, 2 * SCALE, RoundingMode.DOWN).setScale(SCALE, RoundingMode.HALF_EVEN));
  }

  /** Integer part, toward zero. */
  public BigInteger trunc() {
    return value.setScale(0, RoundingMode.DOWN).toBigIntegerExact();
  }

  /** Square-and-multiply with {@link #mul} rounding at every step. */
  public Dec pow(long n) {
    if (n == 0) return ONE;
    Dec acc = ONE;
    Dec d = this;
    long i = n;
    while (i > 1) {
      if ((i & 1) == 1) acc = acc.mul(d);
      i /= 2;
      d = d.mul(d);
    }
    return d.mul(acc);
  }

  public boolean isZero() {
    return value.signum() == 0;
  }

  public int signum() {
    return value.signum();
  }

  @Override
  public int compareTo(Dec o) {
    return value.compareTo(o.value);
  }

  /** Canonical text: plain notation with exactly 18 decimals. */
  @Override
  public String toString() {
    return value.toPlainString();
  }
}
