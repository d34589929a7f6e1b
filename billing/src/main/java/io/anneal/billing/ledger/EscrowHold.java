package io.anneal.billing.ledger;

/**
 * A job's escrow: the most it may cost in uact ({@code amountUact}) at the quoted price.
 *
 * <p>AKT-direct fallback (bme-spec 16.5): on admission, {@code aktOffer} is the AKT price (USD, a
 * decimal string) at which the tenant may pay from its AKT deposit instead, offered only while the
 * oracle is healthy (null: no offer); the ledger takes the offer only while the BME is halted and the
 * tenant lacks ACT. An escrow taken that way has {@code aktPrice} (the offer it took) and holds
 * {@code heldUakt} instead of uact; settlement pays the provider in AKT at that price.
 */
public record EscrowHold(String jobId, String tenantId, long amountUact, long priceUactPerGpuHour, String gpuClass,
    int gpus, String aktOffer, String aktPrice, long heldUakt) {
  public EscrowHold {
    if (amountUact < 0) throw new IllegalArgumentException("escrow amount must be >= 0");
    if (priceUactPerGpuHour < 0) throw new IllegalArgumentException("price must be >= 0");
    if (heldUakt < 0) throw new IllegalArgumentException("held uakt must be >= 0");
    if (heldUakt > 0 && aktPrice == null) throw new IllegalArgumentException("an AKT escrow needs its AKT price");
  }

  /** An escrow in ACT, with no AKT offer. */
  public EscrowHold(String jobId, String tenantId, long amountUact, long priceUactPerGpuHour, String gpuClass, int gpus) {
    this(jobId, tenantId, amountUact, priceUactPerGpuHour, gpuClass, gpus, null, null, 0);
  }

  /** The same hold, offering the AKT-direct fallback at {@code price} (null: no offer). */
  public EscrowHold offeringAkt(String price) {
    return new EscrowHold(jobId, tenantId, amountUact, priceUactPerGpuHour, gpuClass, gpus, price, aktPrice, heldUakt);
  }

  /** True for an escrow paid from the tenant's AKT deposit (16.5). */
  public boolean inAkt() {
    return aktPrice != null;
  }
}
