package io.anneal.billing.ledger;

/** ACT put aside at admission to cover a job's maximum cost at the price quoted then. */
public record EscrowHold(String jobId, String tenantId, long amountUact, long priceUactPerGpuHour, String gpuClass,
    int gpus) {
  public EscrowHold {
    if (amountUact < 0) throw new IllegalArgumentException("escrow amount must be >= 0");
    if (priceUactPerGpuHour < 0) throw new IllegalArgumentException("price must be >= 0");
  }
}
