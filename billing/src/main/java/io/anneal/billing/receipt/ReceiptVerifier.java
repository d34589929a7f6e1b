package io.anneal.billing.receipt;

import io.anneal.billing.merkle.MerkleTree;
import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.security.Signature;

/** Checks that a receipt is in its batch and that the batch root carries the node's signature. */
public final class ReceiptVerifier {
  private ReceiptVerifier() {}

  public static boolean verify(SignedReceipt r, PublicKey nodeKey) {
    return MerkleTree.verify(r.leafHash(), r.proof(), r.batchRoot()) && rootSigned(r.batchRoot(), r.signature(), nodeKey);
  }

  /** Whether {@code signature} is {@code nodeKey}'s Ed25519 signature over a batch root. */
  public static boolean rootSigned(byte[] batchRoot, byte[] signature, PublicKey nodeKey) {
    try {
      Signature s = Signature.getInstance("Ed25519");
      s.initVerify(nodeKey);
      s.update(batchRoot);
      return s.verify(signature);
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      // Ed25519 verify() may throw ("Invalid point") instead of returning false on a corrupted signature.
      return false;
    }
  }

  /**
   * As above, from the text forms the API and the outbox carry: the root in hex, the signature and the
   * key (X.509) in Base64. Input that cannot be read signed nothing: false.
   */
  public static boolean rootSigned(String batchRootHex, String signatureB64, String publicKeyB64) {
    try {
      return rootSigned(java.util.HexFormat.of().parseHex(batchRootHex), java.util.Base64.getDecoder().decode(signatureB64),
          NodeKeys.decodePublic(publicKeyB64));
    } catch (IllegalArgumentException | NullPointerException e) {
      return false;
    }
  }
}
