package io.anneal.billing.bme;

import java.math.BigInteger;

/** How a redemption's gross AKT is covered by remint credits and fresh AKT (bme-spec 10.3). */
public record RemintSplit(
    BigInteger remintIssued, BigInteger newlyMintedAkt, BigInteger remintCreditsAfter, BigInteger userAmount,
    BigInteger vaultAktDelta) {}
