package io.anneal.billing.bme;

/** CR as a Dec and in truncated, clamped basis points (bme-spec 6). */
public record CollateralRatio(Dec ratio, long bps) {}
