package io.anneal.billing.bme;

/** Conversion direction: a mint (AKT→ACT top-up) or a redemption (ACT→AKT payout or refund). */
public enum Direction {
  AKT_TO_ACT("uakt", "uact"),
  ACT_TO_AKT("uact", "uakt");

  private final String from;
  private final String to;

  Direction(String from, String to) {
    this.from = from;
    this.to = to;
  }

  public String fromDenom() {
    return from;
  }

  public String toDenom() {
    return to;
  }
}
