package io.anneal.billing.ledger;

import java.util.Objects;

/** One line of a ledger transaction: a signed amount of one denom on one account. */
public record Posting(String account, String denom, long amount) {
  public Posting {
    Objects.requireNonNull(account, "account");
    if (!"uact".equals(denom) && !"uakt".equals(denom)) throw new IllegalArgumentException("denom " + denom);
    if (amount == 0) throw new IllegalArgumentException("a posting of 0 says nothing");
  }
}
