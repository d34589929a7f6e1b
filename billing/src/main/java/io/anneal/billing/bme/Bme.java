package io.anneal.billing.bme;

import java.math.BigInteger;

/** The pure functions of bme-spec Appendix A. No state, no I/O. */
public final class Bme {
  private static final Dec TEN_THOUSAND = Dec.fromInt(10_000);

  private Bme() {}

  /** Prices one conversion (section 10.1). {@code actSupply} null skips the supply check. */
  public static Quote quote(Direction dir, BigInteger amount, OracleSnapshot oracle, BmeParams params,
      BigInteger actSupply) throws BmeException {
    if (amount.signum() <= 0) throw new BmeException(BmeError.INVALID_AMOUNT, "amount must be > 0");
    Dec pFrom = oracle.price(dir.fromDenom());
    Dec pTo = oracle.price(dir.toDenom());
    if (pFrom.isZero() || pTo.isZero()) throw new BmeException(BmeError.ZERO_PRICE, "zero price");
    Dec rate = pFrom.quo(pTo);
    if (dir == Direction.ACT_TO_AKT && actSupply != null && actSupply.compareTo(amount) < 0) {
      throw new BmeException(BmeError.INSUFFICIENT_SUPPLY, "ACT supply " + actSupply + " < " + amount);
    }
    Dec mintDec = Dec.fromInt(amount).mul(rate);
    BigInteger mint = mintDec.trunc();
    if (mint.signum() <= 0) throw new BmeException(BmeError.EPSILON, "output below one base unit");
    BigInteger min = params.minMint().get(dir.toDenom());
    if (min != null && min.signum() > 0 && mint.compareTo(min) < 0) {
      throw new BmeException(BmeError.MINIMUM_MINT, "output " + mint + " " + dir.toDenom() + " below minimum " + min);
    }
    long bps = dir == Direction.AKT_TO_ACT ? params.mintSpreadBps() : params.settleSpreadBps();
    Dec spreadDec = Dec.ZERO;
    BigInteger spread = BigInteger.ZERO;
    if (bps > 0) {
      spreadDec = mintDec.mul(Dec.fromInt(bps)).quo(TEN_THOUSAND);
      spread = spreadDec.trunc();
      if (spread.signum() <= 0) spread = BigInteger.ZERO;
    }
    return new Quote(rate, mintDec, mint, bps, spreadDec, spread, mint.subtract(spread));
  }

  /** Section 10.3: remint credits cover the gross output first; the shortfall is fresh AKT. */
  public static RemintSplit remintSplit(BigInteger mint, BigInteger spread, BigInteger credits) {
    BigInteger issued = credits.compareTo(mint) >= 0 ? mint : credits;
    BigInteger fresh = mint.subtract(issued);
    BigInteger user = mint.subtract(spread);
    return new RemintSplit(issued, fresh, credits.subtract(issued), user, fresh.subtract(user));
  }

  /** Section 6. */
  public static CollateralRatio collateralRatio(BigInteger vaultAkt, BigInteger pendingAkt, BigInteger actSupply,
      OracleSnapshot oracle) throws BmeException {
    Dec pA = oracle.price("uakt");
    Dec pB = oracle.price("uact");
    if (pA.isZero() || pB.isZero()) throw new BmeException(BmeError.ZERO_PRICE, "zero price");
    Dec cr = Dec.fromInt(vaultAkt.subtract(pendingAkt)).mul(pA.quo(pB));
    if (actSupply.signum() > 0) cr = cr.quo(Dec.fromInt(actSupply));
    BigInteger bps = cr.mul(TEN_THOUSAND).trunc();
    long clamped = bps.compareTo(BigInteger.valueOf(BmeParams.CR_BPS_CLAMP)) > 0
        ? BmeParams.CR_BPS_CLAMP : bps.longValueExact();
    return new CollateralRatio(cr, clamped);
  }

  /** Section 7.2: the mint-epoch length for a CR in bps. */
  public static long epochBlocks(long crBps, BmeParams p) {
    long w = p.circuitBreakerWarnThreshold();
    if (crBps >= w || p.epochBlocksBackoffPercent() == 0) return p.minEpochBlocks();
    long steps = (w - crBps) / BmeParams.BACKOFF_STEP_BPS;
    if (steps == 0) return p.minEpochBlocks();
    Dec base = Dec.fromInt(100 + p.epochBlocksBackoffPercent()).quo(Dec.fromInt(100));
    Dec r = Dec.fromInt(p.minEpochBlocks()).mul(base.pow(steps));
    Dec cap = Dec.fromInt(BmeParams.BACKOFF_CAP_TICKS);
    if (r.compareTo(cap) > 0) r = cap;
    return Math.max(r.trunc().longValueExact(), p.minEpochBlocks());
  }

  /** Section 7.1: evaluate the breaker and tell whether the stored record changed. */
  public static StatusUpdate nextStatus(BreakerState stored, BigInteger vaultAkt, BigInteger pendingAkt,
      BigInteger actSupply, OracleSnapshot oracle, BmeParams p) {
    Status status;
    long diff = stored.epochHeightDiff();
    CollateralRatio cr = null;
    try {
      cr = collateralRatio(vaultAkt, pendingAkt, actSupply, oracle);
      if (cr.bps() > p.circuitBreakerWarnThreshold()) {
        status = Status.HEALTHY;
        diff = epochBlocks(cr.bps(), p);
      } else if (cr.bps() > p.circuitBreakerHaltThreshold()) {
        status = Status.WARNING;
        diff = epochBlocks(cr.bps(), p);
      } else {
        status = Status.HALT_CR;
      }
      long restart = p.options().restartThresholdBps();
      if (restart != 0 && stored.status() == Status.HALT_CR && status != Status.HALT_CR && cr.bps() <= restart) {
        status = Status.HALT_CR; // 16.4 hysteresis: a halted breaker waits for CR above the restart threshold
        diff = stored.epochHeightDiff();
      }
    } catch (BmeException e) {
      status = e.code() == BmeError.ORACLE_UNHEALTHY || e.code() == BmeError.ZERO_PRICE
          ? Status.HALT_ORACLE : Status.HALT_CR;
    }
    BreakerState candidate = new BreakerState(status, stored.previousStatus(), diff);
    if (candidate.equals(stored)) return new StatusUpdate(stored, false, cr);
    return new StatusUpdate(new BreakerState(status, stored.status(), diff), true, cr);
  }

  /**
   * 16.4 "exact USD": the uakt that buy {@code usd} dollars at the oracle's AKT price, rounded up to
   * a whole uakt ({@code ceil(usd / P)} to 6 decimals).
   */
  public static long uaktForUsd(java.math.BigDecimal usd, OracleSnapshot oracle) throws BmeException {
    if (usd == null || usd.signum() <= 0) throw new BmeException(BmeError.INVALID_AMOUNT, "usd must be > 0");
    Dec p = oracle.price("uakt");
    if (p.isZero()) throw new BmeException(BmeError.ZERO_PRICE, "AKT price is zero");
    java.math.BigDecimal uakt = usd.movePointRight(6).divide(p.value(), 0, java.math.RoundingMode.CEILING);
    try {
      return uakt.longValueExact();
    } catch (ArithmeticException e) {
      throw new BmeException(BmeError.INVALID_AMOUNT, "usd " + usd.toPlainString() + " is beyond 64 bits of uakt");
    }
  }

  /** Section 8.1 steps 2–3: may a new request of this direction be queued now? */
  public static void admit(Status status, Direction dir, OracleSnapshot oracle) throws BmeException {
    oracle.price(dir.fromDenom());
    oracle.price(dir.toDenom());
    if (status.compareTo(Status.HALT_CR) > 0) {
      throw new BmeException(BmeError.CIRCUIT_BREAKER, "circuit breaker " + status);
    }
    if (status == Status.HALT_CR && dir != Direction.ACT_TO_AKT) {
      throw new BmeException(BmeError.CIRCUIT_BREAKER, "circuit breaker HALT_CR: mints are paused");
    }
  }
}
