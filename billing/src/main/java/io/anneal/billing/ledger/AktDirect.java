package io.anneal.billing.ledger;

import io.anneal.billing.bme.Dec;
import io.anneal.billing.bme.Status;
import java.math.BigInteger;

/**
 * The arithmetic of the AKT-direct fallback (bme-spec 16.5), in the spec's Dec rules: while the BME
 * is halted ({@code status >= HALT_CR}) and the oracle is healthy, a tenant without enough ACT pays a
 * job straight from its AKT deposit. {@code uaktNeeded = quo(unsettledUact, P)}; the provider is paid
 * {@code trunc} of what the deposit covers, which clears {@code mul(paid, P)} uact of the charge.
 */
public final class AktDirect {
  private AktDirect() {}

  /** Whether a stored breaker status lets jobs be paid in AKT (the oracle's health is the caller's). */
  public static boolean allowedIn(Status stored) {
    return stored.compareTo(Status.HALT_CR) >= 0;
  }

  /** uakt to hold for a job whose most cost is {@code capUact}: {@code quo(cap, P)} rounded up, so it covers. */
  public static long holdUakt(long capUact, String aktPrice) {
    Dec q = Dec.fromInt(capUact).quo(Dec.parse(aktPrice));
    BigInteger whole = q.trunc();
    if (Dec.fromInt(whole).compareTo(q) < 0) whole = whole.add(BigInteger.ONE);
    return whole.longValueExact();
  }

  /** uakt paid to the provider for {@code chargeUact}: {@code trunc(min(quo(charge, P), held))}. */
  public static long payUakt(long chargeUact, long heldUakt, String aktPrice) {
    Dec needed = Dec.fromInt(chargeUact).quo(Dec.parse(aktPrice));
    Dec covered = needed.compareTo(Dec.fromInt(heldUakt)) > 0 ? Dec.fromInt(heldUakt) : needed;
    return covered.trunc().longValueExact();
  }

  /** uact of the charge that {@code paidUakt} clears: {@code mul(paid, P)}, whole uact toward zero. */
  public static long clearedUact(long paidUakt, String aktPrice) {
    return Dec.fromInt(paidUakt).mul(Dec.parse(aktPrice)).trunc().longValueExact();
  }
}
