package io.anneal.billing.bme;

/** A BME operation refused or failed with a spec error code; nothing was changed. */
public final class BmeException extends Exception {
  private static final long serialVersionUID = 1L;
  private final BmeError code;

  public BmeException(BmeError code, String message) {
    super(code + ": " + message);
    this.code = code;
  }

  public BmeError code() {
    return code;
  }
}
