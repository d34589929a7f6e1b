package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.anneal.billing.merkle.MerkleTree;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Settlements store a receipt's Merkle proof compactly; both stored forms read back to the same steps. */
class ProofEncodingTest {
  private static List<MerkleTree.Step> proofOfLeaf(int index, int leaves) {
    List<byte[]> hashes = new ArrayList<>();
    for (int i = 0; i < leaves; i++) hashes.add(MerkleTree.leafHash(("receipt " + i).getBytes(StandardCharsets.UTF_8)));
    return MerkleTree.ofLeafHashes(hashes).proof(index);
  }

  @Test
  void theCompactFormReadsBackToTheSameStepsAsTheTextFormAndIsShorter() {
    List<MerkleTree.Step> proof = proofOfLeaf(517, 1000);
    String compact = SqlLedger.encodeProofCompact(proof);
    String text = SqlLedger.encodeProof(proof);
    assertThat(compact).startsWith("b64:");
    assertThat(compact.length()).isLessThan(text.length() * 3 / 4);
    assertThat(SqlLedger.encodeProof(SqlLedger.decodeProof(compact))).isEqualTo(text);
    assertThat(SqlLedger.encodeProof(SqlLedger.decodeProof(text))).as("rows written before V9").isEqualTo(text);
    assertThat(SqlLedger.decodeProof(SqlLedger.encodeProofCompact(List.of()))).isEmpty();
  }

  @Test
  void aDamagedCompactProofIsRefused() {
    String compact = SqlLedger.encodeProofCompact(proofOfLeaf(3, 8));
    String cut = "b64:" + java.util.Base64.getEncoder().encodeToString(
        java.util.Arrays.copyOf(java.util.Base64.getDecoder().decode(compact.substring(4)), 20));
    assertThatThrownBy(() -> SqlLedger.decodeProof(cut)).isInstanceOf(IllegalArgumentException.class);
  }
}
