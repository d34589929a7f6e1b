package io.anneal.billing.bme;

/** Result of one status evaluation: the new record, whether it changed, and the CR seen (if any). */
public record StatusUpdate(BreakerState state, boolean changed, CollateralRatio cr) {}
