package io.anneal.billing;

/** Event-bus addresses owned by billing. */
public final class BillingAddresses {
  /** Request/reply: a signed receipt (ReceiptJson) → {@code {receiptId, settled, duplicate, chargeUact, refundUact, refusal}}. */
  public static final String RECEIPT = "anneal.billing.receipt";

  private BillingAddresses() {}
}
