package io.anneal.billing.ledger;

/** The BME supply as derived from the ledger (bme-spec section 4 names). */
public record SupplyView(
    long vaultAkt, long actSupply, long engineAct, long remintCredits, long totalMintedUact, long totalMintedUakt,
    long totalBurnedUact, String status, String previousStatus, long epochHeightDiff, long escrowedUact, long pendingAkt) {}
