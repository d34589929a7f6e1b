package io.anneal.billing.receipt;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.ledger.SqlLedger;
import io.anneal.billing.merkle.MerkleTree;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The forms a signed receipt computes once are those computed from scratch, and cannot be changed through it. */
class SignedReceiptTest {
  private static final HexFormat HEX = HexFormat.of();

  private static List<SignedReceipt> batch() throws Exception {
    KeyPair node = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    return new ReceiptSigner(node.getPrivate()).sign(List.of(ReceiptCheckTest.receipt("j1", 0, 5),
        ReceiptCheckTest.receipt("j2", 1, 7_000_000_000L), ReceiptCheckTest.receipt("j3", 0, 9)));
  }

  @Test
  void encodedFormsAreTheOnesComputedFromScratch() throws Exception {
    for (SignedReceipt r : batch()) {
      byte[] canonical = r.receipt().canonicalBytes();
      byte[] leaf = MerkleTree.leafHash(canonical);
      assertThat(r.encode()).isSameAs(r);
      assertThat(r.leafHash()).isEqualTo(leaf);
      assertThat(r.leafHashHex()).isEqualTo(HEX.formatHex(leaf));
      assertThat(r.canonicalText()).isEqualTo(new String(canonical, StandardCharsets.UTF_8));
      assertThat(r.batchRootHex()).isEqualTo(HEX.formatHex(r.batchRoot()));
      assertThat(r.signatureBase64()).isEqualTo(Base64.getEncoder().encodeToString(r.signature()));
      List<MerkleTree.Step> decoded = SqlLedger.decodeProof(r.proofCompact());
      assertThat(decoded).hasSameSizeAs(r.proof());
      for (int i = 0; i < decoded.size(); i++) {
        assertThat(decoded.get(i).sibling()).isEqualTo(r.proof().get(i).sibling());
        assertThat(decoded.get(i).siblingOnLeft()).isEqualTo(r.proof().get(i).siblingOnLeft());
      }
      assertThat(MerkleTree.verify(leaf, SqlLedger.decodeProof(r.proofCompact()), r.batchRoot())).isTrue();
    }
  }

  @Test
  void theLeafHashHandedOutIsACopy() throws Exception {
    SignedReceipt r = batch().get(0);
    byte[] leaf = r.leafHash();
    byte[] kept = leaf.clone();
    leaf[0] ^= 1;
    assertThat(r.leafHash()).isEqualTo(kept);
    assertThat(MerkleTree.verify(r.leafHash(), r.proof(), r.batchRoot())).isTrue();
  }

  @Test
  void equalByContent() throws Exception {
    SignedReceipt r = batch().get(1);
    SignedReceipt same = new SignedReceipt(r.receipt(), r.batchRoot(), SqlLedger.decodeProof(r.proofCompact()), r.signature());
    assertThat(same).isEqualTo(r).hasSameHashCodeAs(r);
    byte[] otherSignature = r.signature();
    otherSignature[0] ^= 1;
    assertThat(new SignedReceipt(r.receipt(), r.batchRoot(), r.proof(), otherSignature)).isNotEqualTo(r);
    assertThat(new SignedReceipt(r.receipt(), r.batchRoot(), List.of(), r.signature())).isNotEqualTo(r);
  }
}
