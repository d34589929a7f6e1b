package io.anneal.billing.merkle;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

class MerkleTreeTest {
  private static List<byte[]> leaves(int n) {
    List<byte[]> out = new ArrayList<>();
    for (int i = 0; i < n; i++) out.add(MerkleTree.leafHash(("leaf-" + i).getBytes(StandardCharsets.UTF_8)));
    return out;
  }

  @Property(tries = 200)
  void everyLeafProvesItsInclusionAndNoOtherLeafDoes(@ForAll @IntRange(min = 1, max = 70) int n,
      @ForAll @IntRange(min = 0, max = 69) int pick) {
    int i = pick % n;
    List<byte[]> leaves = leaves(n);
    MerkleTree t = MerkleTree.ofLeafHashes(leaves);
    assertThat(MerkleTree.verify(leaves.get(i), t.proof(i), t.root())).isTrue();
    byte[] other = MerkleTree.leafHash("not in the tree".getBytes(StandardCharsets.UTF_8));
    assertThat(MerkleTree.verify(other, t.proof(i), t.root())).isFalse();
    if (n > 1) assertThat(MerkleTree.verify(leaves.get((i + 1) % n), t.proof(i), t.root())).isFalse();
  }

  @Property(tries = 100)
  void aFlippedBitInTheRootFailsVerification(@ForAll @IntRange(min = 1, max = 40) int n, @ForAll @IntRange(min = 0, max = 255) int bit) {
    List<byte[]> leaves = leaves(n);
    MerkleTree t = MerkleTree.ofLeafHashes(leaves);
    byte[] root = t.root();
    root[bit / 8] ^= (byte) (1 << (bit % 8));
    assertThat(MerkleTree.verify(leaves.get(0), t.proof(0), root)).isFalse();
  }
}
