package io.anneal.billing.receipt;

import io.anneal.billing.merkle.MerkleTree;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;

/**
 * Checks one settled run of a job from what {@code GET /api/v1/receipts/{jobId}} returns, with no
 * access to the ledger: that the signed body is the run it claims to be, that it is in the batch its
 * node signed, that the node's key signed that batch, and that it is in its accounting epoch's Merkle
 * root (ADR 3, ADR 13). An auditor who takes the node key from the provider, and the epoch root from
 * where it is published, instead of from the same answer, trusts the service for nothing here.
 */
public final class ReceiptCheck {
  private static final HexFormat HEX = HexFormat.of();
  private static final String CANONICAL = "anneal-receipt/1";
  /** Lines of the canonical body: the version, then the fields of {@link Receipt} in order. */
  private static final int BODY_LINES = 15;

  private ReceiptCheck() {}

  /** PASS and FAIL say what was proved; PENDING means it cannot be proved yet (the epoch is still open). */
  public enum Outcome { PASS, FAIL, PENDING }

  /** One named check and what it found. */
  public record Check(String name, Outcome outcome, String detail) {
    public Check {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(outcome, "outcome");
      Objects.requireNonNull(detail, "detail");
    }
  }

  /**
   * A settled run as the receipts API shows it. {@code nodePublicKey} is the X.509 Ed25519 key in
   * Base64; {@code epochLeafHash}, {@code epochProof} and {@code epochRoot} may be null while the
   * epoch is open ({@code epochClosed} false) or for a response without an epoch.
   */
  public record Run(String jobId, String receiptId, String nodeId, String body, String batchRoot, String proof,
      String signature, String nodePublicKey, String epochLeafHash, boolean epochClosed, String epochProof,
      String epochRoot) {
    public Run {
      Objects.requireNonNull(jobId, "jobId");
      Objects.requireNonNull(receiptId, "receiptId");
      Objects.requireNonNull(nodeId, "nodeId");
      Objects.requireNonNull(body, "body");
      Objects.requireNonNull(batchRoot, "batchRoot");
      Objects.requireNonNull(proof, "proof");
      Objects.requireNonNull(signature, "signature");
      Objects.requireNonNull(nodePublicKey, "nodePublicKey");
    }
  }

  /**
   * The checks of one run, in order; a later check that needs what an earlier one failed to
   * establish still runs on what is there, so every fault shows at once.
   */
  public static List<Check> run(Run r) {
    List<Check> out = new ArrayList<>();
    out.add(body(r));
    byte[] leaf = MerkleTree.leafHash(r.body().getBytes(StandardCharsets.UTF_8));
    out.add(inBatch(r, leaf));
    out.add(signed(r));
    out.add(inEpoch(r, leaf));
    return out;
  }

  /** The canonical body is a run of this job on this node, under this receipt id. */
  static Check body(Run r) {
    String name = "receipt body";
    String[] lines = r.body().split("\n", -1);
    if (lines.length != BODY_LINES || !lines[0].equals(CANONICAL)) {
      return new Check(name, Outcome.FAIL, "not an " + CANONICAL + " body of " + BODY_LINES + " lines");
    }
    if (!lines[1].equals(r.receiptId())) return new Check(name, Outcome.FAIL, "it names receipt " + lines[1] + ", not " + r.receiptId());
    if (!lines[2].equals(r.jobId())) return new Check(name, Outcome.FAIL, "it names job " + lines[2] + ", not " + r.jobId());
    if (!lines[4].equals(r.nodeId())) return new Check(name, Outcome.FAIL, "it names node " + lines[4] + ", not " + r.nodeId());
    if (!r.receiptId().matches(java.util.regex.Pattern.quote(r.jobId()) + "/[0-9]+")) {
      return new Check(name, Outcome.FAIL, "receipt id " + r.receiptId() + " is not a run of job " + r.jobId());
    }
    return new Check(name, Outcome.PASS, "run " + r.receiptId() + " on node " + r.nodeId() + ": " + lines[8]
        + " ns of device time on " + lines[6] + " GPU(s) of class " + lines[5] + ", " + lines[13]);
  }

  /** The body's leaf hash, folded up its proof, gives the root its node signed. */
  static Check inBatch(Run r, byte[] leaf) {
    String name = "in its node's signed batch";
    try {
      byte[] root = HEX.parseHex(r.batchRoot());
      boolean ok = MerkleTree.verify(leaf, MerkleTree.parseProof(r.proof()), root);
      return new Check(name, ok ? Outcome.PASS : Outcome.FAIL, ok ? "leaf " + HEX.formatHex(leaf) + " → batch root " + r.batchRoot()
          : "the body's leaf " + HEX.formatHex(leaf) + " does not fold to the batch root " + r.batchRoot());
    } catch (IllegalArgumentException e) {
      return new Check(name, Outcome.FAIL, "unreadable batch root or proof: " + e.getMessage());
    }
  }

  /** The node's Ed25519 key signed the batch root. */
  static Check signed(Run r) {
    String name = "signed by node " + r.nodeId();
    PublicKey key;
    try {
      key = NodeKeys.decodePublic(r.nodePublicKey());
    } catch (RuntimeException e) {
      return new Check(name, Outcome.FAIL, "unreadable node key: " + e.getMessage());
    }
    byte[] root;
    byte[] signature;
    try {
      root = HEX.parseHex(r.batchRoot());
      signature = Base64.getDecoder().decode(r.signature());
    } catch (IllegalArgumentException e) {
      return new Check(name, Outcome.FAIL, "unreadable batch root or signature: " + e.getMessage());
    }
    boolean ok = ReceiptVerifier.rootSigned(root, signature, key);
    return new Check(name, ok ? Outcome.PASS : Outcome.FAIL, (ok ? "Ed25519 signature over the batch root checks out"
        : "the signature does not check out against the batch root") + " with key " + fingerprint(r.nodePublicKey()));
  }

  /** The leaf is in its epoch's Merkle root, once the epoch has closed. */
  static Check inEpoch(Run r, byte[] leaf) {
    String name = "in its accounting epoch";
    if (r.epochLeafHash() != null && !r.epochLeafHash().equalsIgnoreCase(HEX.formatHex(leaf))) {
      return new Check(name, Outcome.FAIL, "the epoch files leaf " + r.epochLeafHash() + ", not the body's " + HEX.formatHex(leaf));
    }
    if (!r.epochClosed() || r.epochRoot() == null) {
      return new Check(name, Outcome.PENDING, "the epoch has not closed yet: its Merkle root does not exist until it does");
    }
    try {
      boolean ok = MerkleTree.verify(leaf, MerkleTree.parseProof(r.epochProof()), HEX.parseHex(r.epochRoot()));
      return new Check(name, ok ? Outcome.PASS : Outcome.FAIL, ok ? "leaf → epoch root " + r.epochRoot()
          : "the leaf does not fold to the epoch root " + r.epochRoot());
    } catch (IllegalArgumentException e) {
      return new Check(name, Outcome.FAIL, "unreadable epoch root or proof: " + e.getMessage());
    }
  }

  /** A short, stable name for a public key: the first 16 hex digits of SHA-256 over its X.509 bytes. */
  public static String fingerprint(String publicKeyB64) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(Base64.getDecoder().decode(publicKeyB64));
      return "sha256:" + HEX.formatHex(d, 0, 8);
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      return "(unreadable key)";
    }
  }
}
