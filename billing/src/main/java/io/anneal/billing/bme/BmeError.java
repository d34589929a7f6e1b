package io.anneal.billing.bme;

/** Error codes of bme-spec section 11 (and 3.1 validation). */
public enum BmeError {
  UNAUTHORIZED(false), INVALID_AMOUNT(true), INVALID_DENOM(true), INSUFFICIENT_FUNDS(false),
  ORACLE_UNHEALTHY(false), CIRCUIT_BREAKER(false), ZERO_PRICE(false), INSUFFICIENT_SUPPLY(false),
  EPSILON(true), MINIMUM_MINT(true), MAX_ATTEMPTS(false),
  /** 16.4 options (admission only): the mint queue is full; the option asked for is off. */
  QUEUE_FULL(false), OPTION_OFF(false);

  private final boolean fatal;

  BmeError(boolean fatal) {
    this.fatal = fatal;
  }

  /** Fatal execution errors cancel a queued conversion at once; the others are retried. */
  public boolean fatal() {
    return fatal;
  }
}
