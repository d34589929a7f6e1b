package io.anneal.billing.sql;

/** What a writer of the store has done, for metrics: a group-commit writer, or the Vert.x SQL client ledger's lanes. */
public interface WriterStats {
  /** The writer's name, as metrics tag it. */
  String name();

  /** Operations waiting for a transaction. */
  int queued();

  /** Transactions committed. */
  long commits();

  /** Operations committed. */
  long committedOps();

  /** Batches retried whole after a deadlock or a serialization failure. */
  long transientRetries();

  /** Failed batches split in halves to isolate the failing operation. */
  long splits();

  /** Operations that failed. */
  long failedOps();
}
