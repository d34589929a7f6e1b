package io.anneal.billing.receipt;

import io.anneal.billing.merkle.MerkleTree;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;

/**
 * A receipt with the proof that its node signed it: the node signs the Merkle root of a batch of
 * receipts once, and each receipt carries its path to that root. A batch of one is a tree of one.
 *
 * <p>Its hashed and encoded forms (canonical text, leaf hash, root in hex, proof and signature as
 * the ledger stores them) are computed once, on first use: billing hashes the leaf to verify it, and
 * the store's writer, which settles a batch at a time, then reads them instead of computing them
 * again (see {@link #encode}).
 */
public final class SignedReceipt {
  private static final HexFormat HEX = HexFormat.of();

  private final Receipt receipt;
  private final byte[] batchRoot;
  private final List<MerkleTree.Step> proof;
  private final byte[] signature;
  /**
   * Null until first asked for. Immutable with final fields: a thread that reads another's write
   * without synchronization sees it whole or not at all (then computes the same forms again).
   */
  private Forms forms;

  /** The forms computed once; the byte arrays never leave this class uncopied. */
  private record Forms(byte[] leafHash, String canonicalText, String leafHashHex, String batchRootHex, String proofCompact,
      String signatureBase64) {}

  public SignedReceipt(Receipt receipt, byte[] batchRoot, List<MerkleTree.Step> proof, byte[] signature) {
    this.receipt = Objects.requireNonNull(receipt, "receipt");
    this.batchRoot = batchRoot.clone();
    this.proof = List.copyOf(proof);
    this.signature = signature.clone();
  }

  public Receipt receipt() {
    return receipt;
  }

  public byte[] batchRoot() {
    return batchRoot.clone();
  }

  public List<MerkleTree.Step> proof() {
    return proof;
  }

  public byte[] signature() {
    return signature.clone();
  }

  /** The hash of the receipt's canonical bytes as a Merkle leaf, {@code H(0x00 || canonical)}. */
  public byte[] leafHash() {
    return forms().leafHash.clone();
  }

  /** The receipt as signed, in its canonical text (what the leaf hash covers). */
  public String canonicalText() {
    return forms().canonicalText;
  }

  public String leafHashHex() {
    return forms().leafHashHex;
  }

  public String batchRootHex() {
    return forms().batchRootHex;
  }

  /** The proof in the ledger's compact form ({@link MerkleTree#formatProofCompact}). */
  public String proofCompact() {
    return forms().proofCompact;
  }

  public String signatureBase64() {
    return forms().signatureBase64;
  }

  /**
   * Computes the hashed and encoded forms now, on the calling thread, if no thread has yet: a store
   * calls it before handing the receipt to its writer, so that the one thread every settlement
   * passes through does not spend its time there.
   */
  public SignedReceipt encode() {
    forms();
    return this;
  }

  private Forms forms() {
    Forms f = forms;
    if (f == null) {
      byte[] canonical = receipt.canonicalBytes();
      byte[] leaf = MerkleTree.leafHash(canonical);
      f = new Forms(leaf, new String(canonical, StandardCharsets.UTF_8), HEX.formatHex(leaf), HEX.formatHex(batchRoot),
          MerkleTree.formatProofCompact(proof), Base64.getEncoder().encodeToString(signature));
      forms = f;
    }
    return f;
  }

  /** Equal when receipt, root, proof and signature are (the arrays by content). */
  @Override
  public boolean equals(Object o) {
    if (this == o) return true;
    if (!(o instanceof SignedReceipt s)) return false;
    if (!receipt.equals(s.receipt) || !Arrays.equals(batchRoot, s.batchRoot) || !Arrays.equals(signature, s.signature)
        || proof.size() != s.proof.size()) {
      return false;
    }
    for (int i = 0; i < proof.size(); i++) {
      MerkleTree.Step a = proof.get(i);
      MerkleTree.Step b = s.proof.get(i);
      if (a.siblingOnLeft() != b.siblingOnLeft() || !Arrays.equals(a.sibling(), b.sibling())) return false;
    }
    return true;
  }

  @Override
  public int hashCode() {
    return 31 * (31 * receipt.hashCode() + Arrays.hashCode(batchRoot)) + Arrays.hashCode(signature);
  }

  @Override
  public String toString() {
    return "SignedReceipt[" + receipt.receiptId() + ", batch root " + HEX.formatHex(batchRoot) + "]";
  }
}
