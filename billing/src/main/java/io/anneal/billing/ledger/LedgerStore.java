package io.anneal.billing.ledger;

import io.anneal.billing.receipt.SignedReceipt;
import io.vertx.core.Future;
import java.util.List;
import java.util.Optional;

/**
 * The ledger as billing writes it per receipt: the port between the billing verticle and a SQL
 * store (ADR 12). Two adapters pass one contract suite on H2 and on PostgreSQL: {@code
 * JdbcLedgerStore} (the group-commit writer and settlement lanes, the default) and {@link
 * SqlClientLedgerStore} (the Vert.x SQL clients: the reactive PostgreSQL client, H2 through the
 * Vert.x JDBC client). Both write the same schema by the same rules ({@link SettlementPlan}); what
 * reads a ledger as a whole (epochs, proofs, supply, payouts) works on what either wrote.
 *
 * <p>Futures complete once the write is committed. Expected outcomes (a duplicate, a refusal) are
 * values; a failed future means nothing was written for that call.
 */
public interface LedgerStore extends AutoCloseable {
  /**
   * Settles a verified receipt exactly once: its job's escrow is charged for the usage it reports
   * (bounded by what the job's GPUs could have run since it was placed), the provider is paid, a
   * final receipt releases the rest. A second delivery answers with the first settlement, flagged
   * {@link Settlement#duplicate()}; a receipt with no open escrow of its tenant, or from a node its job
   * was not placed on, is refused and changes nothing. Receipts arriving together settle together,
   * in one transaction per batch.
   */
  Future<Settlement> settle(SignedReceipt receipt);

  /** The settlement of a receipt, if it was settled. */
  Future<Optional<Settlement>> settlementOf(String receiptId);

  /**
   * Closes every accounting epoch that ended before {@code nowMs} and is not closed yet (bme-spec
   * 16.1): totals, the burned-vs-minted ratio and the Merkle root over its settlements, once every
   * settlement filed in it has committed (it first takes the settlement barrier exclusively, in a
   * transaction of its own; it reads the epochs after, while settlements go on into later epochs).
   * Returns the epochs it closed, oldest first.
   */
  Future<List<SqlLedger.EpochClose>> closeEpochs(long nowMs);

  /** A node's registered Ed25519 public key (X.509, Base64), if it is registered. */
  Future<Optional<String>> nodeKey(String nodeId);

  /**
   * Every key the node has had, the current one first (ADR 18): a signature by any key not revoked is
   * accepted; empty when the node is not registered.
   */
  Future<List<NodeKey>> nodeKeys(String nodeId);

  /** Registers a node's key; false when the node is registered with another key (nothing changes). */
  Future<Boolean> registerNode(String nodeId, String publicKeyB64);

  /** Keeps a receipt refused for who sent it (bad signature, unknown node, not placed on its node) for audit. */
  Future<Void> recordRefused(String receiptId, String nodeId, String reason);

  /** The newest refused receipts first, at most {@code limit}. */
  Future<List<SqlLedger.RefusedReceipt>> refusedReceipts(int limit);

  /** For logs and metrics: which adapter, on which engine. */
  String describe();

  /** Settles what is queued, then releases what the adapter owns. */
  @Override
  void close();
}
