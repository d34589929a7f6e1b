package io.anneal.billing.bme;

/** Circuit-breaker status, in the spec's order (comparisons use the ordinal). */
public enum Status {
  UNSPECIFIED, HEALTHY, WARNING, HALT_CR, HALT_ORACLE;

  public boolean mintsAllowed() {
    return compareTo(HALT_CR) < 0;
  }

  public boolean refundsAllowed() {
    return compareTo(HALT_ORACLE) < 0;
  }
}
