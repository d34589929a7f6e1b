package io.anneal.billing.ledger;

/**
 * What settling a receipt did. {@code duplicate} is true when the receipt had been settled
 * before; the amounts are then those of the first settlement.
 */
public record Settlement(
    String receiptId, String jobId, long chargeUact, long refundUact, long txId, boolean duplicate,
    LedgerRefusal refusal) {

  public boolean settled() {
    return refusal == null;
  }

  public static Settlement refused(String receiptId, String jobId, LedgerRefusal why) {
    return new Settlement(receiptId, jobId, 0, 0, 0, false, why);
  }
}
