package io.anneal.billing.ledger;

/**
 * One signing key a node has had (V18, ADR 18). A node signs with its current key; a rotation retires
 * the old one, whose signatures stay valid; a revoked key's signatures are refused from {@code revokedAtMs} on.
 *
 * @param publicKey X.509 Ed25519 public key, Base64
 */
public record NodeKey(String nodeId, String publicKey, long addedAtMs, Long retiredAtMs, Long revokedAtMs, boolean current) {
  /** {@code current}, {@code retired} or {@code revoked}. */
  public String state() {
    return revokedAtMs != null ? "revoked" : current ? "current" : "retired";
  }

  /** Whether a signature by this key is accepted now. */
  public boolean accepted() {
    return revokedAtMs == null;
  }

  /** The outcome of {@link SqlLedger#rotateNodeKey}. */
  public enum Rotation {
    DONE,
    UNKNOWN_NODE,
    /** The key named as the one replaced is not the node's current key (another rotation came first). */
    NOT_CURRENT,
    /** The new key was this node's before: a key once retired or revoked does not come back. */
    KEY_REUSED
  }

  /** The outcome of {@link SqlLedger#revokeNodeKey}. */
  public enum Revocation {
    REVOKED,
    ALREADY,
    UNKNOWN_KEY,
    /** The node signs with it now: rotate it away instead. */
    CURRENT
  }

  /** Every key of a node ({@code $}: the node id), the current one first, then the newest first. */
  static final String SELECT = "SELECT h.node_id, h.public_key, h.added_at_ms, h.retired_at_ms, h.revoked_at_ms,"
      + " CASE WHEN k.public_key = h.public_key THEN TRUE ELSE FALSE END FROM node_key_history h"
      + " LEFT JOIN node_key k ON k.node_id = h.node_id WHERE h.node_id = $"
      + " ORDER BY CASE WHEN k.public_key = h.public_key THEN 0 ELSE 1 END, h.added_at_ms DESC, h.public_key";

  /** A key's first row in the history ({@code $}: node, key, when). */
  static final String INSERT_HISTORY = "INSERT INTO node_key_history (node_id, public_key, added_at_ms) VALUES ($, $, $)";
}
