package io.anneal.billing.receipt;

import io.anneal.billing.merkle.MerkleTree;
import java.util.List;
import java.util.Objects;

/**
 * A receipt with the proof that its node signed it: the node signs the Merkle root of a batch of
 * receipts once, and each receipt carries its path to that root. A batch of one is a tree of one.
 */
public record SignedReceipt(Receipt receipt, byte[] batchRoot, List<MerkleTree.Step> proof, byte[] signature) {
  public SignedReceipt {
    Objects.requireNonNull(receipt, "receipt");
    batchRoot = batchRoot.clone();
    proof = List.copyOf(proof);
    signature = signature.clone();
  }

  public byte[] leafHash() {
    return MerkleTree.leafHash(receipt.canonicalBytes());
  }

  @Override
  public byte[] batchRoot() {
    return batchRoot.clone();
  }

  @Override
  public byte[] signature() {
    return signature.clone();
  }
}
