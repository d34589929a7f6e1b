package io.anneal.billing.ledger;

/** A deposit of AKT converted to ACT, or the reason it was not. */
public record MintResult(long depositedUakt, long mintedUact, long spreadUact, long creditedUact, String swapRate,
    boolean duplicate, LedgerRefusal refusal, String detail) {

  public static MintResult refused(LedgerRefusal why, String detail) {
    return new MintResult(0, 0, 0, 0, null, false, why, detail);
  }
}
