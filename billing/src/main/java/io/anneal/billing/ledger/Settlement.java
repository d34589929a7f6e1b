package io.anneal.billing.ledger;

/**
 * What settling a receipt did. {@code duplicate} is true when the receipt had been settled
 * before; the amounts are then those of the first settlement. A job paid from the tenant's AKT
 * deposit (bme-spec 16.5) moves no ACT: {@code chargeUact} and {@code refundUact} are 0 and the
 * provider was paid {@code paidUakt}. {@code billedGpuNanos} is the GPU time billed when it is less
 * than the receipt claimed (more than the job's GPUs could have run since it was placed), else null.
 */
public record Settlement(
    String receiptId, String jobId, long chargeUact, long refundUact, long txId, boolean duplicate,
    LedgerRefusal refusal, long paidUakt, Long billedGpuNanos) {

  public Settlement(String receiptId, String jobId, long chargeUact, long refundUact, long txId, boolean duplicate,
      LedgerRefusal refusal, long paidUakt) {
    this(receiptId, jobId, chargeUact, refundUact, txId, duplicate, refusal, paidUakt, null);
  }

  public Settlement(String receiptId, String jobId, long chargeUact, long refundUact, long txId, boolean duplicate,
      LedgerRefusal refusal) {
    this(receiptId, jobId, chargeUact, refundUact, txId, duplicate, refusal, 0);
  }

  public boolean settled() {
    return refusal == null;
  }

  /** Whether less GPU time was billed than the receipt claimed. */
  public boolean usageCapped() {
    return billedGpuNanos != null;
  }

  /** The same settlement, answered to a later delivery of its receipt. */
  public Settlement asDuplicate() {
    return new Settlement(receiptId, jobId, chargeUact, refundUact, txId, true, refusal, paidUakt, billedGpuNanos);
  }

  public static Settlement refused(String receiptId, String jobId, LedgerRefusal why) {
    return new Settlement(receiptId, jobId, 0, 0, 0, false, why);
  }
}
