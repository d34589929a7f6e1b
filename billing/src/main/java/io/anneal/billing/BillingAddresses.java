package io.anneal.billing;

/** Event-bus addresses owned by billing. */
public final class BillingAddresses {
  /** Request/reply: a signed receipt (ReceiptJson) → {@code {receiptId, settled, duplicate, chargeUact, refundUact, refusal}}. */
  public static final String RECEIPT = "anneal.billing.receipt";
  /**
   * A pricing window closed (bme-spec 16.2): {@code {"endMs": ..., "classes": {"H100": {"busyGpuSeconds": ..,
   * "availableGpuSeconds": ..}}}}, sent by the scheduler; billing moves the class prices.
   */
  public static final String CLASS_UTILIZATION = "anneal.billing.class-utilization";

  /**
   * Publish: billing stored a pricing window's price changes (bme-spec 16.2), {@code {"changes": [{"gpuClass",
   * "fromMs", "uactPerGpuSecond" (exact decimal), "uactPerGpuHour", "utilization"}]}}; every instance adds
   * them to the prices it quotes (cluster mode, ADR 20).
   */
  public static final String PRICES_CHANGED = "anneal.billing.prices-changed";

  /**
   * Publish: a node's signing keys changed (rotated or revoked, ADR 18), {@code {"nodeId": ...}}; billing
   * reads them again before the next receipt of that node.
   */
  public static final String NODE_KEYS_CHANGED = "anneal.billing.node-keys-changed";

  private BillingAddresses() {}
}
