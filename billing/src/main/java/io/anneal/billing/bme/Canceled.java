package io.anneal.billing.bme;

/** Ledger record of a cancelled conversion: the whole input was refunded in its own denom. */
public record Canceled(RequestId id, String owner, long amount, String denom, BmeError reason, long tick) {}
