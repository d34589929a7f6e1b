package io.anneal.billing.receipt;

import io.anneal.billing.merkle.MerkleTree;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.Signature;
import java.util.ArrayList;
import java.util.List;

/**
 * Signs receipts in batches with a node's Ed25519 key: one signature over the Merkle root of the
 * batch, so the cost is per batch, not per receipt (an Ed25519 signature costs about 1 ms here).
 */
public final class ReceiptSigner {
  private final PrivateKey key;

  public ReceiptSigner(PrivateKey key) {
    this.key = key;
  }

  public List<SignedReceipt> sign(List<Receipt> batch) {
    List<byte[]> leaves = new ArrayList<>(batch.size());
    for (Receipt r : batch) leaves.add(MerkleTree.leafHash(r.canonicalBytes()));
    MerkleTree tree = MerkleTree.ofLeafHashes(leaves);
    byte[] root = tree.root();
    byte[] sig = signRoot(root);
    List<SignedReceipt> out = new ArrayList<>(batch.size());
    for (int i = 0; i < batch.size(); i++) {
      out.add(new SignedReceipt(batch.get(i), root, tree.proof(i), sig));
    }
    return out;
  }

  /** The signature over a batch root (a batch signed again with a new key keeps its root and proofs). */
  public byte[] signRoot(byte[] root) {
    try {
      Signature s = Signature.getInstance("Ed25519");
      s.initSign(key);
      s.update(root);
      return s.sign();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("Ed25519 signing failed", e);
    }
  }
}
