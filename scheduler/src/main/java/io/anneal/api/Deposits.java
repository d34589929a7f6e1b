package io.anneal.api;

/** AKT amounts as users write them. */
public final class Deposits {
  private Deposits() {}

  /** Parses AKT ("100", "0.5", max 6 decimals) into uakt; throws a Problem when invalid. */
  public static long parseAkt(String akt) {
    return ApiVerticle.parseAkt(akt);
  }
}
