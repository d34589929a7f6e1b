package io.anneal.billing.ledger;

/** Why the ledger refused an operation. Refusals change nothing. */
public enum LedgerRefusal {
  INSUFFICIENT_FUNDS, DUPLICATE, NO_OPEN_ESCROW, UNKNOWN_NODE, BAD_SIGNATURE, CIRCUIT_BREAKER, BELOW_MINIMUM_MINT,
  ORACLE_UNHEALTHY, INVALID_AMOUNT,
  /** An AKT-direct deposit (bme-spec 16.5) outside a halt, or with the oracle down, or with the option off. */
  AKT_DIRECT_UNAVAILABLE,
  /** The mint queue is at its configured depth (bme-spec 16.4 back-pressure): retry after the next mint epoch. */
  QUEUE_FULL,
  /** A receipt from a node the job was never placed on: that node cannot bill it. */
  NOT_PLACED_ON_NODE
}
