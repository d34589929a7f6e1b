package io.anneal.billing.bme;

import java.math.BigInteger;

/** The pure result of pricing one conversion (bme-spec 10.1). */
public record Quote(
    Dec swapRate, Dec mintAmountDec, BigInteger mintAmount, long spreadBps, Dec spreadAmountDec,
    BigInteger spreadAmount, BigInteger userAmount) {}
