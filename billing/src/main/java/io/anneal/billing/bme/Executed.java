package io.anneal.billing.bme;

/** Ledger record of an executed conversion (bme-spec 10.5). Amounts in base units. */
public record Executed(RequestId id, Direction direction, long burned, Dec swapRate, long mintAmount, long spread,
    long userAmount, long remintAccrued, long remintIssued, long newlyMinted, Dec priceAkt, long tick,
    Status statusInForce) {}
